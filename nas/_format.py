"""Human-readable numbers for the command line."""

from __future__ import annotations

__all__ = ["human", "onnx_checks"]


def human(n: float) -> str:
    """`1234567` -> `1.23M`; keeps three significant digits."""
    for limit, suffix in ((1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "K")):
        if abs(n) >= limit:
            return f"{n / limit:.3g}{suffix}"
    return f"{n:.3g}"


def onnx_checks(report: dict) -> list[str]:
    """One line per ONNX file of an extracted folder's report: how far its logits are from PyTorch's."""
    return [f"onnx ({name.replace('_', ' ')}) vs PyTorch: max |logit diff| {check['max_abs_diff']:.2g}, "
            f"top-1 agreement {check['top1_agreement']:.3f}"
            for name, check in report.get("onnx_vs_pytorch", {}).items()]
