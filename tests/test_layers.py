"""The dependency direction of docs/design.md, checked on the source: every import, including those
inside functions, goes to the same layer or one below it, and no package reaches into another's
private (underscore) modules."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
# Bottom to top. `latency_agent` runs on target devices without the rest of vit-nas, so it
# imports nothing of it. `deploy.export` (the exporters) sits below `latency_models`, which times what
# they build; the rest of `deploy` (extract, retrain) sits above `search`.
LAYERS = ("latency_agent", "search_space", "supernet", "deploy.export", "latency_models", "search", "deploy",
          "nas")
PACKAGES = ("latency_agent", "search_space", "supernet", "latency_models", "search", "deploy", "nas")


def layer(module: str) -> int | None:
    """The layer of a dotted module name, or None for a module outside the project."""
    matches = [i for i, name in enumerate(LAYERS) if module == name or module.startswith(name + ".")]
    return max(matches, key=lambda i: len(LAYERS[i]), default=None)


def imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) of every import in a file, absolute names only (the project uses no relative ones)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            found += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names
                      if alias.name.startswith("_") and not alias.name.startswith("__")]
    return found


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def sources(packages) -> list[Path]:
    return [p for package in packages for p in sorted((ROOT / package).rglob("*.py"))]


def test_layers_are_known():
    assert [layer(name) for name in LAYERS] == list(range(len(LAYERS)))
    assert layer("deploy.export.onnx_export") == 3 and layer("deploy.folder") == 6 and layer("numpy") is None


@pytest.mark.parametrize("path", sources(PACKAGES), ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_go_down_and_stay_public(path):
    own = module_name(path)
    here = layer(own)
    wrong = []
    for line, target in imports(path):
        there = layer(target)
        if there is None:
            continue
        if there > here:
            wrong.append(f"line {line}: {own} ({LAYERS[here]}) imports {target} ({LAYERS[there]}), above it")
        private = [p for p in target.split(".")[1:] if p.startswith("_") and not p.startswith("__")]
        if private and target.split(".")[0] != own.split(".")[0]:
            wrong.append(f"line {line}: {own} imports {target}, private to another package")
    assert not wrong, "\n".join(wrong)


def test_benchmarks_import_only_the_public_packages():
    wrong = [f"{p.relative_to(ROOT)} line {line}: {target}" for p in sources(["bench"])
             for line, target in imports(p) if target.split(".")[0] in ("tests", "nas")]
    assert not wrong, "\n".join(wrong)
