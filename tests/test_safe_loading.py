"""No user file is ever unpickled: each loader refuses a file whose unpickling would run code,
and no module of the packages calls an unsafe loader (checked on the source, docs/design.md, File formats).

Existing coverage, not repeated here: CIFAR-10 python batches that name os.system
(tests/supernet/test_data.py), library-level checks of damaged and code-carrying
checkpoints and model.pt files (tests/supernet/test_train.py, tests/search/test_deploy.py).
Here: the same refusal through the real `nas` entry point, with a payload that would
create a marker file, for every loader a user reaches.
"""

from __future__ import annotations

import ast
import os
import pickle
from pathlib import Path

import pytest
import torch
import yaml

from search_space import load_space
from supernet.pretrained import WeightsError, read_vit_state_dict
from supernet.supervit import SuperViT
from supernet.train_config import TrainConfig
from tests.nas.test_cli import assert_bad_input, nas

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("latency_agent", "search_space", "supernet", "search", "latency_models", "deploy", "nas", "bench")


class RunsCode:
    """Unpickling this runs `touch marker`: a loader that unpickles it leaves the marker behind."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch '{self.marker}'",))


@pytest.fixture
def marker(tmp_path, monkeypatch):
    monkeypatch.setenv("NAS_HOME", str(tmp_path / "home"))
    path = tmp_path / "pwned"
    yield path
    assert not path.exists(), "a loader unpickled a file and ran its code"


def _payload_is_live(marker: Path, path: Path) -> None:
    """The file really runs its code when unpickled the unsafe way (so the refusals below mean something)."""
    torch.load(path, weights_only=False)
    assert marker.exists()
    marker.unlink()


@pytest.fixture(scope="module")
def digits_checkpoint():
    space = load_space("digits")
    torch.manual_seed(0)
    return {"state_dict": SuperViT(space).state_dict(), "space": space.to_dict(),
            "train_config": TrainConfig().to_dict(), "epoch": 1, "metrics": {}, "version": 1}


def test_supernet_checkpoint_that_runs_code_is_refused(tmp_path, marker, digits_checkpoint):
    evil = tmp_path / "supernet.pt"
    torch.save({**digits_checkpoint, "metrics": RunsCode(marker)}, evil)
    _payload_is_live(marker, evil)
    best = tmp_path / "best.yaml"
    best.write_text(yaml.safe_dump({"arch": load_space("digits").smallest().to_dict(), "space": "digits",
                                    "supernet": {"path": str(evil)}}))
    assert_bad_input(nas("eval", str(best)), "supernet.pt", "refused")
    assert_bad_input(nas("extract", str(best), "--out", str(tmp_path / "sub")), "supernet.pt", "refused")
    assert_bad_input(nas("search", "--device", "iphone", "--budget", "1ms", "--space", "digits",
                         "--supernet", str(evil), "--out", str(tmp_path / "run")), "supernet.pt", "refused")


def test_subnet_model_pt_that_runs_code_is_refused(tmp_path, marker):
    evil = tmp_path / "subnet" / "model.pt"
    evil.parent.mkdir()
    torch.save({"state_dict": {}, "config": RunsCode(marker), "version": 1}, evil)
    _payload_is_live(marker, evil)
    assert_bad_input(nas("eval", str(evil)), "model.pt", "refused")
    assert_bad_input(nas("eval", str(evil.parent)), "model.pt", "refused")


def test_pretrained_weights_that_run_code_are_refused(tmp_path, marker):
    evil = tmp_path / "deit.pth"
    torch.save({"model": {"cls_token": RunsCode(marker)}}, evil)
    _payload_is_live(marker, evil)
    with pytest.raises(WeightsError, match=r"deit\.pth: not a weights-only PyTorch file"):
        read_vit_state_dict(evil)


@pytest.mark.parametrize("protocol", [2, pickle.HIGHEST_PROTOCOL])
def test_predictor_file_that_is_a_pickle_is_refused(tmp_path, marker, protocol):
    from latency_models.csvio import append_measurement
    from tests.latency_models.helpers import fake_measurements

    evil = tmp_path / "predictor.json"
    evil.write_bytes(pickle.dumps({"format": "vit-nas-latency-predictor", "coef_ms": RunsCode(marker)},
                                  protocol=protocol))
    data = append_measurement(tmp_path / "m.csv", fake_measurements(load_space("digits"), 6, device="iphone"))
    assert_bad_input(nas("latency", "eval", "--device", "iphone", "--space", "digits", "--data", str(data),
                         "--predictor", str(evil)), "predictor.json")
    # a stored predictor (what `nas latency fit` writes under $NAS_HOME) is read the same way
    from latency_models.store import predictor_path

    stored = predictor_path("cpu", load_space("digits"))
    stored.parent.mkdir(parents=True, exist_ok=True)
    stored.write_bytes(evil.read_bytes())
    cpu_rows = tmp_path / "cpu.csv"
    cpu_rows.write_text(data.read_text().replace("iphone", "cpu"))
    assert_bad_input(nas("latency", "eval", "--device", "cpu", "--space", "digits", "--data", str(cpu_rows)),
                     stored.name)


# ---- the source check --------------------------------------------------------------------------

_SAFE_YAML_LOADERS = {"SafeLoader", "CSafeLoader", "BaseLoader", "CBaseLoader"}
_UNSAFE_YAML = {"unsafe_load", "unsafe_load_all", "full_load", "full_load_all"}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return ""


def _keyword(call: ast.Call, name: str) -> ast.AST | None:
    return next((k.value for k in call.keywords if k.arg == name), None)


class _Checker(ast.NodeVisitor):
    """Collects unsafe deserialisation calls, resolving `import x as y` and `from x import f`."""

    def __init__(self) -> None:
        self.names: dict[str, str] = {}  # local name -> dotted origin
        self.safe_loaders = set(_SAFE_YAML_LOADERS)
        self.found: list[tuple[int, str]] = []

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self.names[alias.asname or alias.name.split(".")[0]] = alias.name if alias.asname else \
                alias.name.split(".")[0]

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        for alias in node.names:
            self.names[alias.asname or alias.name] = f"{node.module}.{alias.name}"

    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        if any(self._origin(b).rsplit(".", 1)[-1] in self.safe_loaders for b in node.bases):
            self.safe_loaders.add(node.name)  # a subclass of a safe loader (duplicate-key checks)
        self.generic_visit(node)

    def _origin(self, node: ast.AST) -> str:
        name = _dotted(node)
        head, _, rest = name.partition(".")
        origin = self.names.get(head, head)
        return f"{origin}.{rest}" if rest else origin

    def visit_Call(self, node: ast.Call) -> None:
        origin = self._origin(node.func)
        problem = self._problem(origin, node)
        if problem:
            self.found.append((node.lineno, problem))
        self.generic_visit(node)

    def _problem(self, origin: str, call: ast.Call) -> str | None:
        module, _, func = origin.rpartition(".")
        if module in ("pickle", "cPickle", "_pickle", "dill", "joblib") and func in ("load", "loads"):
            return f"{origin}: unpickles arbitrary objects"
        if origin == "torch.load":
            flag = _keyword(call, "weights_only")
            if not (isinstance(flag, ast.Constant) and flag.value is True):
                return "torch.load without weights_only=True"
        if module == "yaml" and func in _UNSAFE_YAML:
            return f"{origin}: constructs arbitrary Python objects"
        if module == "yaml" and func in ("load", "load_all"):
            loader = _keyword(call, "Loader")
            if loader is None or _dotted(loader).rsplit(".", 1)[-1] not in self.safe_loaders:
                return f"{origin} without a SafeLoader (use yaml.safe_load)"
        if origin in ("numpy.load", "np.load"):
            flag = _keyword(call, "allow_pickle")
            if flag is not None and not (isinstance(flag, ast.Constant) and flag.value is False):
                return "numpy.load with allow_pickle"
        return None


def unsafe_calls(source: str, filename: str = "<source>") -> list[str]:
    """`file:line: problem` for every call that could unpickle or construct arbitrary objects."""
    checker = _Checker()
    checker.visit(ast.parse(source, filename))
    return [f"{filename}:{line}: {problem}" for line, problem in checker.found]


@pytest.mark.parametrize("snippet", [
    "import pickle\npickle.load(open('f', 'rb'))",
    "import pickle as p\np.loads(b'')",
    "from pickle import loads\nloads(b'')",
    "import torch\ntorch.load('f')",
    "import torch\ntorch.load('f', weights_only=False)",
    "import torch\nflag = True\ntorch.load('f', weights_only=flag)",
    "from torch import load\nload('f', map_location='cpu')",
    "import yaml\nyaml.load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.Loader)",
    "import yaml\nyaml.load(text, Loader=yaml.UnsafeLoader)",
    "import yaml\nyaml.unsafe_load(text)",
    "import yaml\nyaml.full_load(text)",
    "import yaml\nclass L(yaml.FullLoader):\n    pass\nyaml.load(text, Loader=L)",
    "import numpy as np\nnp.load('f.npy', allow_pickle=True)",
    "import dill\ndill.loads(b'')",
])
def test_the_checker_finds_unsafe_calls(snippet):
    assert len(unsafe_calls(snippet)) == 1, snippet


@pytest.mark.parametrize("snippet", [
    "import torch\ntorch.load('f', map_location='cpu', weights_only=True)",
    "import yaml\nyaml.safe_load(text)",
    "import yaml\nyaml.load(text, Loader=yaml.SafeLoader)",
    "import yaml\nclass Strict(yaml.SafeLoader):\n    pass\nyaml.load(text, Loader=Strict)",
    "import numpy as np\nnp.load('f.npz', allow_pickle=False)\nnp.load('f.npz')",
    "import pickle\nclass Only(pickle.Unpickler):\n    pass\npickle.dumps(1)",
    "import json\njson.loads('{}')",
])
def test_the_checker_accepts_safe_calls(snippet):
    assert unsafe_calls(snippet) == []


def _package_sources() -> list[Path]:
    files = [p for package in PACKAGES for p in sorted((ROOT / package).rglob("*.py"))]
    assert len(files) > 50, "the package folders moved: the check would pass on nothing"
    return files


def test_no_package_module_calls_an_unsafe_loader():
    found = [hit for path in _package_sources()
             for hit in unsafe_calls(path.read_text(encoding="utf-8"), str(path.relative_to(ROOT)))]
    assert found == []


def test_the_source_check_sees_the_loaders_that_exist():
    """The check reads the modules that load user files: it finds their (safe) calls."""
    text = (ROOT / "supernet" / "checkpoint.py").read_text()
    assert "torch.load(p, map_location=\"cpu\", weights_only=True)" in text
    assert unsafe_calls(text.replace("weights_only=True", "weights_only=False")) != []
    yaml_text = (ROOT / "search_space" / "yamlio.py").read_text()
    assert unsafe_calls(yaml_text) == []
    unsafe = yaml_text.replace("class _StrictLoader(yaml.SafeLoader)", "class _StrictLoader(yaml.Loader)")
    assert unsafe_calls(unsafe) != []
