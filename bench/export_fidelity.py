"""How far the exported ONNX files are from the PyTorch subnet they come from, over many archs.

For the digits and fashion-mnist benchmark supernets (bench/_supernets.py): uniform samples
of each space, extracted and exported exactly as `nas extract` does (`deploy.folder.onnx_files`),
their logits compared with PyTorch's on the first 200 validation images:

- `model.float.onnx` of an arch at 32 bits everywhere, and of one with 16-bit blocks (whose
  activations and weights PyTorch rounds to fp16, as the ONNX graph does): max |logit difference|;
- `model.float.onnx` of an arch with 8- or 4-bit blocks (the fake-quantized graph in float);
- `model.onnx` with those blocks on ONNX Runtime's int8 / int4 kernels: max |logit
  difference| relative to the largest |logit|, top-1 agreement with PyTorch, and the
  difference in top-1 accuracy.

The int-kernel model quantizes activations dynamically (per tensor, from each input's own
range) where PyTorch uses the calibrated static range, so their outputs differ by rounding;
the worst cases measured here are the bound the README states.

    python bench/export_fidelity.py [--archs 30]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path

import _common
import numpy as np
import torch
from _supernets import supernet

from deploy.folder import CHECK_IMAGES, onnx_files
from search.validation import validation_data
from search_space.arch import float_arch
from supernet import extract, float_subnet
from supernet.checkpoint import load_supernet


def _has_int(arch) -> bool:
    return any(b.bits in (8, 4) for b in arch.blocks)


def archs_of(space, n: int, seed: int) -> dict[str, list]:
    """Uniform samples by precision: `n` with 8- or 4-bit blocks, `n // 3` with 16-bit blocks and no
    lower, and `n // 3` at 32 bits everywhere (the first samples with every block set to 32)."""
    rng = np.random.default_rng(seed)
    groups: dict[str, list] = {"float32": [], "fp16": [], "int": []}
    wanted = {"float32": n // 3, "fp16": n // 3, "int": n}
    while any(len(groups[k]) < wanted[k] for k in groups):
        arch = space.sample(rng)
        if len(groups["float32"]) < wanted["float32"]:
            groups["float32"].append(float_arch(arch))
        group = "int" if _has_int(arch) else "fp16" if any(b.bits == 16 for b in arch.blocks) else None
        if group and len(groups[group]) < wanted[group]:
            groups[group].append(arch)
    return groups


def check(model, space, arch, val, folder: Path) -> dict:
    sub = extract(model, arch).eval()
    float_model = float_subnet(space, arch, supernet=model) if _has_int(arch) else None
    report: dict = {}
    onnx_files(folder, space, arch, sub, float_model, val, report)
    with torch.inference_mode():
        reference = sub(val[0][:CHECK_IMAGES]).numpy()
    top1 = float((reference.argmax(1) == val[1][:CHECK_IMAGES].numpy()).mean())
    out = {"arch": arch.to_dict(), "pytorch_top1": top1, "max_abs_logit": float(np.abs(reference).max()),
           "float": report["onnx_vs_pytorch"]["float"]}
    if "int_kernels" in report["onnx_vs_pytorch"]:
        ints = report["onnx_vs_pytorch"]["int_kernels"]
        out["int_kernels"] = {**ints, "relative_max_abs_diff": ints["max_abs_diff"] / out["max_abs_logit"],
                              "top1_difference": ints["top1"] - top1}
    return out


def bench_dataset(dataset: str, n: int, work: Path) -> dict:
    model, data = load_supernet(supernet(dataset))
    space = model.space
    val = validation_data(data["train_config"], space, limit=CHECK_IMAGES)
    groups = archs_of(space, n, seed=0)
    rows: dict[str, list] = {}
    for name, archs in groups.items():
        rows[name] = []
        for i, arch in enumerate(archs):
            folder = work / f"{dataset}-{name}-{i}"
            folder.mkdir()
            rows[name].append(check(model, space, arch, val, folder))
    ints = rows["int"]
    worst = {
        "float32_archs_float_onnx_max_abs_diff": max(r["float"]["max_abs_diff"] for r in rows["float32"]),
        "fp16_archs_float_onnx_max_abs_diff": max(r["float"]["max_abs_diff"] for r in rows["fp16"]),
        "fp16_archs_float_onnx_min_top1_agreement": min(r["float"]["top1_agreement"] for r in rows["fp16"]),
        "int_archs_float_onnx_max_abs_diff": max(r["float"]["max_abs_diff"] for r in ints),
        "int_archs_float_onnx_min_top1_agreement": min(r["float"]["top1_agreement"] for r in ints),
        "int_kernels_max_relative_diff": max(r["int_kernels"]["relative_max_abs_diff"] for r in ints),
        "int_kernels_min_top1_agreement": min(r["int_kernels"]["top1_agreement"] for r in ints),
        "int_kernels_max_top1_drop": -min(r["int_kernels"]["top1_difference"] for r in ints),
    }
    median = {
        key: statistics.median(r["int_kernels"][field] for r in ints)
        for key, field in (("int_kernels_relative_diff", "relative_max_abs_diff"),
                           ("int_kernels_top1_agreement", "top1_agreement"),
                           ("int_kernels_top1_difference", "top1_difference"))
    }
    print(f"{dataset}: worst {worst}", flush=True)
    return {"archs_per_group": {k: len(v) for k, v in rows.items()}, "images": int(val[0].shape[0]),
            "worst": worst, "median": median, "archs": rows}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--archs", type=int, default=30,
                        help="archs with 8- or 4-bit blocks per space (a third as many of each float kind)")
    parser.add_argument("--datasets", default="digits,fashion-mnist")
    args = parser.parse_args()
    metrics = {}
    with tempfile.TemporaryDirectory() as tmp:
        for dataset in args.datasets.split(","):
            metrics[dataset] = bench_dataset(dataset, args.archs, Path(tmp))
    headline = {}
    for dataset, m in metrics.items():
        w = m["worst"]
        headline[f"{dataset}: float ONNX vs PyTorch, worst max |logit diff|: 32-bit archs / with fp16 "
                 "blocks"] = (f"{w['float32_archs_float_onnx_max_abs_diff']:.1e} / "
                              f"{w['fp16_archs_float_onnx_max_abs_diff']:.1e}")
        headline[f"{dataset}: int8/int4 ONNX vs PyTorch, worst relative logit diff / top-1 agreement / "
                 "top-1 drop"] = (f"{w['int_kernels_max_relative_diff']:.3f} / "
                                  f"{w['int_kernels_min_top1_agreement']:.3f} / "
                                  f"{100 * w['int_kernels_max_top1_drop']:.1f} points")
    _common.write_result(
        "export_fidelity",
        params={"archs_per_space": args.archs, "images": CHECK_IMAGES, "seed": 0},
        metrics=metrics,
        notes=("Uniform samples of each space extracted from the benchmark supernets and exported as `nas "
               "extract` does; logits on the first validation images. Relative diff: max |ONNX - PyTorch| "
               "over max |PyTorch logit|."),
        command="python bench/export_fidelity.py",
        headline=headline)


if __name__ == "__main__":
    main()
