"""Malformed user inputs of every kind the `nas` command line reads, and how to judge the outcome.

Shared by the robustness benchmark (bench/robustness.py, driven by a seeded `random.Random`)
and the fuzz tests (tests/nas/test_fuzz_inputs.py, driven by hypothesis). Every case builder
takes a `random.Random`, a fresh folder and the shared `Bases` (valid files to mutate), writes
the input there and returns the `nas` arguments that read it. The command chosen for each kind
rejects bad input before any expensive work, and stays cheap when the input is accepted (tiny
data, one epoch, no search).

Importable as `fuzz_cases` from the bench scripts and as `bench.fuzz_cases` from the repository
root, so it imports neither `_common` nor the `nas` package: it runs the installed `nas` command
(its console-script entry point) in process.
"""

from __future__ import annotations

import copy
import csv
import datetime as dt
import gzip
import io
import json
import os
import random
import string
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, cached_property
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

import click
import numpy as np
import yaml
from click.testing import CliRunner, Result

__all__ = ["KINDS", "PWNED", "Bases", "Outcome", "budget_args", "judge", "make_case", "mutate_tree",
           "nas_command", "run_nas"]

# The file that a payload in the cases creates in the working folder if anything runs it.
PWNED = "vit-nas-fuzz-pwned"

_JUNK: tuple[Any, ...] = (None, "", " ", "☃ ünïcødé", "x" * 5000, -1, 0, 1, 2**31, 10**30, -(10**30),
                          1e308, float("nan"), float("inf"), -0.0, 0.5, True, False, [], {}, [1, 2],
                          {"a": 1}, "../../etc/passwd", "1e999", "\x00", "\u202e", [[[[]]]])


@dataclass(frozen=True)
class Outcome:
    """What one case came to: `rejected` (exit 2, one line), `accepted` (exit 0) or `crashed`."""

    status: str
    why: str = ""


@cache
def nas_command() -> click.Command:
    """The installed `nas` command: what the `nas` console script runs (`nas.cli:main`)."""
    (entry,) = entry_points(group="console_scripts", name="nas")
    return entry.load()


def run_nas(args: list[str], home: Path) -> Result:
    """The real `nas` entry point, in process, with a private $NAS_HOME."""
    return CliRunner().invoke(nas_command(), args, env={"NAS_HOME": str(home), "NAS_DEBUG": None})


def judge(r: Result) -> Outcome:
    """Exit 2 with exactly one non-empty stderr line, or exit 0; anything else is a crash."""
    texts = (r.stdout, r.stderr)
    if any("Traceback" in t for t in texts):
        return Outcome("crashed", "a traceback was printed")
    if r.exc_info is not None and r.exc_info[0] is not SystemExit:
        return Outcome("crashed", f"{r.exc_info[0].__name__}: {r.exc_info[1]}")
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    if r.exit_code == 2:
        if len(lines) == 1 and r.stderr.strip() == lines[0] and "error" in lines[0]:
            return Outcome("rejected", lines[0])
        return Outcome("crashed", f"exit 2 with {len(lines)} stderr lines: {r.stderr[:500]!r}")
    if r.exit_code == 0:
        return Outcome("accepted", r.stdout[-200:])
    return Outcome("crashed", f"exit {r.exit_code}: {r.stderr[-500:]!r}")


# ---- generic mutation --------------------------------------------------------------------------


def _junk(rnd: random.Random) -> Any:
    if rnd.random() < 0.2:
        return "".join(rnd.choice(string.printable + "µ☃\u00e9\U0001f600") for _ in range(rnd.randint(0, 12)))
    return copy.deepcopy(rnd.choice(_JUNK))


def _paths(tree: Any, prefix: tuple = ()) -> list[tuple]:
    out = [prefix]
    if isinstance(tree, dict):
        for k, v in tree.items():
            out += _paths(v, (*prefix, k))
    elif isinstance(tree, list):
        for i, v in enumerate(tree):
            out += _paths(v, (*prefix, i))
    return out


def mutate_tree(tree: Any, rnd: random.Random, edits: int | None = None) -> Any:
    """A deep copy of plain data (dicts, lists, scalars) with 1-3 random edits at random places."""
    tree = copy.deepcopy(tree)
    for _ in range(edits or rnd.randint(1, 3)):
        path = rnd.choice(_paths(tree))
        if not path:
            tree = _junk(rnd) if rnd.random() < 0.1 else tree
            continue
        parent = tree
        for key in path[:-1]:
            parent = parent[key]
        key, op = path[-1], rnd.randrange(6)
        if op == 0 and isinstance(parent, dict):
            del parent[key]
        elif op == 0 and isinstance(parent, list):
            parent.pop(key)
        elif op == 1:
            parent[key] = str(parent[key])
        elif op == 2 and isinstance(parent, dict):
            parent[_safe_key(_junk(rnd)) if rnd.random() < 0.3 else f"{key}_x"] = _junk(rnd)
        elif op == 3 and isinstance(parent, list):
            parent.extend([copy.deepcopy(parent[key])] * rnd.choice((1, 5, 200)))
        elif op == 4 and isinstance(parent[key], (int, float)) and not isinstance(parent[key], bool):
            parent[key] = parent[key] * rnd.choice((-1, 0, 3, 10**6, 1e-9))
        else:
            parent[key] = _junk(rnd)
    return tree


def _safe_key(k: Any) -> Any:
    return k if isinstance(k, (str, int, float, bool)) or k is None else str(k)


def _yaml_text(tree: Any, rnd: random.Random) -> str:
    try:
        return yaml.safe_dump(tree, sort_keys=False, allow_unicode=rnd.random() < 0.5)
    except yaml.YAMLError:
        return str(tree)


def mutate_text(text: str, rnd: random.Random) -> str:
    """Text-level damage: truncation, a duplicated line, inserted junk, tabs, a BOM, nothing."""
    op = rnd.randrange(7)
    if op == 0:
        return text[: rnd.randrange(len(text) + 1)]
    lines = text.splitlines(keepends=True) or [""]
    i = rnd.randrange(len(lines))
    if op == 1:
        return "".join([*lines[: i + 1], lines[i], *lines[i + 1:]])  # a duplicate key
    if op == 2:
        at = rnd.randrange(len(text) + 1)
        return text[:at] + rnd.choice(_TEXT_JUNK) + text[at:]
    if op == 3:
        return text.replace("  ", "\t", 1)
    if op == 4:
        return "\ufeff" + text
    if op == 5:
        return ""
    return text + "".join(rnd.choice(string.printable) for _ in range(rnd.randint(1, 40)))


_TEXT_JUNK = ("{", "]", ":", "\t", "- ", "'", '"', "&a *a",
              f"!!python/object/apply:os.system ['touch {PWNED}']",
              "\u00a0", "%", "@", "---\n", "\x85", "<<: *a", "? [a]\n: 1\n")


def _write_text_or_bytes(path: Path, text: str, rnd: random.Random) -> None:
    if rnd.random() < 0.05:
        path.write_bytes(text.encode("utf-8")[:50] + bytes(rnd.randrange(256) for _ in range(30)))
    else:
        path.write_text(text, encoding="utf-8", errors="surrogatepass")


# ---- valid bases -------------------------------------------------------------------------------


class Bases:
    """Valid inputs of each kind, built once (in `folder`) and mutated by the cases."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)

    @cached_property
    def digits(self):
        from search_space import load_space

        return load_space("digits")

    @cached_property
    def space_dict(self) -> dict:
        return self.digits.to_dict()

    @cached_property
    def arch_dict(self) -> dict:
        return self.digits.smallest().to_dict()

    @cached_property
    def other_arch_dict(self) -> dict:
        from search_space import load_space

        return load_space("cifar10").smallest().to_dict()

    @cached_property
    def measurements_file(self) -> Path:
        """12 archs of digits with made-up iphone latencies (a well-formed measurements CSV)."""
        from latency_models.csvio import append_measurement

        return append_measurement(self.folder / "measurements.csv",
                                  fake_measurements(self.digits, 12, device="iphone"))

    @cached_property
    def measurements(self) -> list[dict[str, str]]:
        with open(self.measurements_file, newline="") as fh:
            return list(csv.DictReader(fh))

    @cached_property
    def predictor(self) -> dict:
        from latency_models import fit_predictor, load_profile

        precisions = load_profile("iphone").precisions
        return fit_predictor("iphone", precisions, self.digits, fake_measurements(self.digits, 12)).to_dict()

    @cached_property
    def checkpoint(self) -> dict:
        """A digits supernet of random weights, as `nas train` saves one (plain data)."""
        import torch

        from supernet.supervit import SuperViT
        from supernet.train_config import TrainConfig

        torch.manual_seed(0)
        return {"state_dict": SuperViT(self.digits).state_dict(), "space": self.space_dict,
                "train_config": TrainConfig().to_dict(), "epoch": 1, "metrics": {}}

    @cached_property
    def checkpoint_file(self) -> Path:
        from supernet.checkpoint import save_checkpoint

        return save_checkpoint(self.folder / "supernet.pt", self.checkpoint)

    @cached_property
    def subnet(self) -> dict:
        """The `model.pt` data of the smallest digits subnet (loaded back as plain data)."""
        import torch

        from supernet import extract, save_subnet
        from supernet.checkpoint import load_supernet

        model, ckpt = load_supernet(self.checkpoint_file, self.digits)
        path = save_subnet(self.folder / "model.pt", extract(model, self.digits.smallest()),
                           extra={"train_config": ckpt["train_config"]})
        return torch.load(path, weights_only=True)


def fake_measurements(space, n: int, seed: int = 0, device: str = "cpu",
                      noise: float = 0.0) -> list:
    """Archs with latencies from a known additive cost model (so a fit can recover them): the
    latency tests' data, and the predictors of the fuzz cases."""
    from latency_models.csvio import Measurement
    from latency_models.device_profile import load_profile
    from latency_models.features import LinearFeatures
    from latency_models.profile_run import sample_archs

    archs = sample_archs(space, n, seed)
    feats = LinearFeatures(space, load_profile("cpu").precisions)
    coef = np.zeros(len(feats.names))
    for name, value in (("const", 0.05), ("linear_macs[fp32]", 2e-9), ("linear_macs[int8]", 1e-9),
                        ("linear_macs[int4]", 1.5e-9), ("linear_calls[fp32]", 0.004),
                        ("blocks[softmax]", 0.01), ("blocks[local]", 0.02), ("merges", 0.015)):
        coef[feats.names.index(name)] = value
    y = feats.matrix(archs) @ coef
    y = y * (1 + noise * np.random.default_rng(seed).standard_normal(len(y)))
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return [Measurement(a, device, float(v), float(v) * 1.1, 100, "fake", 1, 1, now, space.fingerprint,
                        float(v) * 0.95)
            for a, v in zip(archs, y, strict=True)]


# ---- the kinds ---------------------------------------------------------------------------------

_NUMBERS = ("2", "1.5", ".5", "0", "0.0", "-2", "1e3", "1e-3", "1e999", "1E+2", "00", "2.", "1_000", "٣",
            "nan", "inf", "0x10", "1e", "99999999999999999999", "", " ", "1,5", "+2", "２")
_UNITS = ("ms", "s", "us", "µs", "μs", "ns", "", "MS", "m", "sec", "ms ms", "h", "ms\n", "\tms", "msx", "µ")


def budget_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """`nas search --budget`; `--resume` without `--out` stops a well-formed budget before any work."""
    text = rnd.choice(_NUMBERS) + rnd.choice(("", " ", "  ")) + rnd.choice(_UNITS)
    if rnd.random() < 0.3:
        text = mutate_text(text, rnd)
    return budget_args(text)


def budget_args(text: str) -> list[str]:
    return ["search", "--device", "iphone", "--budget", text, "--resume"]


def space_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """A space YAML for `nas space show` / `nas space sample` / `nas latency eval --space`."""
    path = folder / rnd.choice(("space.yaml", "späce ☃.yaml", "s.yml"))
    tree = mutate_tree(bases.space_dict, rnd) if rnd.random() < 0.9 else bases.space_dict
    text = _yaml_text(tree, rnd)
    if rnd.random() < 0.3:
        text = mutate_text(text, rnd)
    _write_text_or_bytes(path, text, rnd)
    command = rnd.randrange(3)
    if command == 0:
        return ["space", "show", str(path), "--json"]
    if command == 1:
        return ["space", "sample", str(path), "-n", "2"]
    return ["latency", "eval", "--device", "iphone", "--space", str(path),
            "--data", str(bases.measurements_file)]


def arch_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """A best.yaml for `nas eval` (naming the tiny digits supernet, or a missing one)."""
    tree: dict[str, Any] = {"arch": bases.arch_dict, "space": "digits",
                            "supernet": {"path": str(bases.checkpoint_file)}, "device": "iphone",
                            "budget_ms": 1.0}
    if rnd.random() < 0.2:
        tree["space"] = bases.space_dict
    if rnd.random() < 0.1:
        tree["arch"] = bases.other_arch_dict  # an arch of another space
    tree = mutate_tree(tree, rnd) if rnd.random() < 0.9 else tree
    text = _yaml_text(tree, rnd)
    if rnd.random() < 0.3:
        text = mutate_text(text, rnd)
    path = folder / "best.yaml"
    _write_text_or_bytes(path, text, rnd)
    return ["eval", str(path)]


def _csv_text(rows: list[dict[str, Any]], columns: list[str]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def csv_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """A measurements / timings CSV for `nas latency eval|fit|import` (iphone: analytic, cheap)."""
    rows = [dict(r) for r in bases.measurements]
    columns = list(rows[0])
    for _ in range(rnd.randint(1, 3)):
        op = rnd.randrange(7)
        row = rnd.choice(rows)
        if op == 0:
            columns.remove(rnd.choice(columns)) if len(columns) > 1 else None
        elif op == 1:
            row[rnd.choice(columns)] = rnd.choice(("nan", "NaN", "-1", "0", "inf", "-inf", "", "1e999", "abc",
                                                   "1,5", "☃", "0x1", "1e-320", " 2 "))
        elif op == 2:
            try:
                row["arch_json"] = json.dumps(mutate_tree(json.loads(row["arch_json"]), rnd))
            except json.JSONDecodeError:  # an earlier edit broke it already
                row["arch_json"] = row["arch_json"][::-1]
        elif op == 3:
            row["arch_json"] = json.dumps(bases.other_arch_dict)
        elif op == 4:
            row["arch_json"] = rnd.choice(("", "{", "[]", "null", "1", '"x"', "{'a': 1}", "NaN"))
        elif op == 5:
            row[rnd.choice(("device", "space"))] = rnd.choice(("cpu", "pixel", "deadbeef", "", "☃"))
        else:
            rows.extend([dict(row)] * rnd.choice((1, 3)))
    text = _csv_text(rows, columns)
    if rnd.random() < 0.3:
        text = mutate_text(text, rnd)
    path = folder / "m.csv"
    _write_text_or_bytes(path, text, rnd)
    command = rnd.choice(("eval", "eval", "import", "fit"))
    device = "cpu" if command == "fit" else "iphone"
    if command == "fit":
        path.write_text(text.replace("iphone", "cpu"), encoding="utf-8", errors="surrogatepass")
    return ["latency", command, "--device", device, "--space", "digits", "--data", str(path),
            *(["--out", str(folder / "p.json")] if command != "eval" else [])]


def predictor_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """A predictor JSON for `nas latency eval --predictor`."""
    tree = mutate_tree(bases.predictor, rnd) if rnd.random() < 0.9 else bases.predictor
    try:
        text = json.dumps(tree, default=str)
    except (TypeError, ValueError):
        text = str(tree)
    if rnd.random() < 0.2:
        text = mutate_text(text, rnd)
    path = folder / "p.json"
    _write_text_or_bytes(path, text, rnd)
    return ["latency", "eval", "--device", "iphone", "--space", "digits", "--predictor", str(path),
            "--data", str(bases.measurements_file)]


def _mutate_state_dict(sd: dict, rnd: random.Random) -> dict:
    import torch

    sd = dict(sd)
    key = rnd.choice(sorted(sd))
    op = rnd.randrange(5)
    if op == 0:
        del sd[key]
    elif op == 1:
        sd[key] = torch.zeros(3)
    elif op == 2:
        sd[key] = torch.full_like(sd[key], float("nan"))
    elif op == 3:
        sd[key + "_extra"] = torch.ones(1)
    else:
        sd[key] = sd[key].to(torch.float64)
    return sd


def _damage_bytes(data: bytes, rnd: random.Random) -> bytes:
    op = rnd.randrange(4)
    if op == 0:
        return data[: rnd.randrange(len(data))]
    if op == 1:
        return bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 2000)))
    if op == 2:
        out = bytearray(data)
        for _ in range(rnd.randint(1, 20)):
            out[rnd.randrange(len(out))] = rnd.randrange(256)
        return bytes(out)
    return b""


def _torch_bytes(data: Any) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save(data, buffer)
    return buffer.getvalue()


def _mutate_saved(base: dict, rnd: random.Random) -> bytes:
    """A torch file: plain data with mutated fields or weights, damaged bytes, or code to run."""
    choice = rnd.randrange(10)
    if choice < 5:
        data = {k: v for k, v in base.items() if k != "state_dict"}
        data = mutate_tree(data, rnd)
        if isinstance(data, dict):
            data["state_dict"] = base["state_dict"]
        return _torch_bytes(data)
    if choice < 7:
        return _torch_bytes({**base, "state_dict": _mutate_state_dict(base["state_dict"], rnd)})
    if choice < 9:
        return _damage_bytes(_torch_bytes(base), rnd)
    return _torch_bytes({**base, "extra": RunsCode(Path(PWNED).resolve())})


class RunsCode:
    """Unpickling this runs a shell command that creates `marker` (if anything unpickles it)."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch '{self.marker}'",))


def checkpoint_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """A supernet checkpoint, named by a best.yaml, for `nas eval`."""
    base = {**bases.checkpoint, "version": 1}
    if rnd.random() < 0.1:
        from search_space import load_space

        base["space"] = load_space("cifar10").to_dict()  # a checkpoint of another space
    path = folder / "supernet.pt"
    path.write_bytes(_mutate_saved(base, rnd))
    best = folder / "best.yaml"
    best.write_text(yaml.safe_dump({"arch": bases.arch_dict, "space": "digits",
                                    "supernet": {"path": str(path)}}))
    return ["eval", str(best)]


def subnet_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """An extracted subnet's model.pt for `nas eval`."""
    path = folder / "model.pt"
    path.write_bytes(_mutate_saved(bases.subnet, rnd))
    return ["eval", str(path) if rnd.random() < 0.8 else str(folder)]


def storage_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """An Optuna storage for `nas search --storage ... --resume`: a bad one is rejected when opened,
    a good one holds no search yet ("nothing to resume"), so no search ever runs.

    Paths are relative to the working folder, so that a mangled one still lands inside it.
    """
    here = os.path.relpath(folder)
    url = rnd.choice((f"sqlite:///{here}/s.db", f"{here}/j.journal", f"sqlite:///{here}/no/dir/s.db", "sqlite://",
                      "sqlite:///:memory:", "foo://bar", "://", "mysql://u@127.0.0.1:1/x", "sqlite:////",
                      f"postgresql://u@127.0.0.1:1/{here}", f"{here}", f"{here}/j.journal/"))
    if rnd.random() < 0.5:
        url = mutate_text(url, rnd).lstrip("/") or "x"
    return ["search", "--device", "iphone", "--budget", "2ms", "--supernet", str(bases.checkpoint_file),
            "--out", str(folder / "run"), "--resume", "--storage", url]


# ---- dataset folders ---------------------------------------------------------------------------


def _png(rnd: random.Random, path: Path) -> None:
    from PIL import Image

    size = rnd.choice((1, 8, 8, 8, 13, 64))
    mode = rnd.choice(("L", "RGB", "RGBA", "P", "1"))
    Image.new(mode, (size, rnd.choice((size, 3)))).save(path, format=rnd.choice(("PNG", "PNG", "BMP", "GIF")))


def _imagefolder(rnd: random.Random, root: Path) -> None:
    classes = 10 if rnd.random() < 0.7 else rnd.choice((0, 1, 9, 11))
    for split, count in (("train", 2), ("test", 1)):
        if split == "test" and rnd.random() < 0.5:
            continue
        for c in range(classes + (split == "test" and rnd.random() < 0.1)):
            folder = root / split / f"class_{c}"
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count if rnd.random() < 0.95 else 0):
                _png(rnd, folder / f"{i}.png")
    damage = rnd.randrange(6)
    files = sorted(root.rglob("*.png"))
    if damage == 0 and files:
        rnd.choice(files).write_bytes(bytes(rnd.randrange(256) for _ in range(rnd.randint(0, 200))))
    elif damage == 1 and files:
        f = rnd.choice(files)
        f.write_bytes(f.read_bytes()[: rnd.randrange(max(1, f.stat().st_size))])
    elif damage == 2:
        (root / "train").mkdir(parents=True, exist_ok=True)
        (root / "train" / "stray.txt").write_text("not an image")


def _idx(data: np.ndarray, magic: int) -> bytes:
    header = magic.to_bytes(4, "big") + b"".join(int(d).to_bytes(4, "big") for d in data.shape)
    return header + data.astype(np.uint8).tobytes()


def _fashion(rnd: random.Random, root: Path) -> None:
    from supernet.datasets.idx import FASHION_STEMS, IMAGES_MAGIC, LABELS_MAGIC

    root.mkdir(parents=True, exist_ok=True)
    n = {"train": 12, "test": 4}
    for key, stem in FASHION_STEMS.items():
        split, what = key.split("_")
        images = what == "images"
        shape = (n[split], 28, 28) if images else (n[split],)
        data = np.arange(np.prod(shape)).reshape(shape) % (256 if images else 10)
        raw = _idx(data, IMAGES_MAGIC if images else LABELS_MAGIC)
        if rnd.random() < 0.25:
            raw = _damage_bytes(raw, rnd) if rnd.random() < 0.7 else _idx(data.reshape(-1), IMAGES_MAGIC)
        if rnd.random() < 0.05:
            continue  # a missing file
        gz = rnd.random() < 0.5
        if gz:
            raw = gzip.compress(raw)
            if rnd.random() < 0.1:
                raw = raw[: len(raw) // 2]
        (root / (stem + (".gz" if gz else ""))).write_bytes(raw)


def _cifar(rnd: random.Random, root: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    arrays = {"x_train": np.zeros((12, 3, 32, 32), np.uint8), "y_train": np.arange(12) % 10,
              "x_test": np.zeros((4, 3, 32, 32), np.uint8), "y_test": np.arange(4) % 10}
    for _ in range(rnd.randint(1, 2)):
        key = rnd.choice(sorted(arrays))
        op = rnd.randrange(6)
        if op == 0:
            del arrays[key]
        elif op == 1 and arrays[key].dtype.kind in "iuf":
            arrays[key] = arrays[key].astype(rnd.choice((np.float32, np.int64, np.int8)))
        elif op == 2:
            arrays[key] = arrays[key].reshape(-1)[: rnd.randint(0, 50)]
        elif op == 3:
            arrays[key] = np.full(arrays[key].shape, rnd.choice((-1, 10, 255)), np.int64)
        elif op == 4:
            arrays[key] = np.zeros((12, 1, 28, 28), np.uint8)
        else:
            arrays[key] = np.array(["a", "b"])
    path = root / "cifar10.npz"
    np.savez(path, **arrays)
    if rnd.random() < 0.15:
        path.write_bytes(_damage_bytes(path.read_bytes(), rnd))


def dataset_case(rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """A dataset folder for `nas train --data-dir` (1 epoch on a dozen images when accepted)."""
    root = folder / "data"
    dataset = rnd.choice(("imagefolder", "imagefolder", "fashion-mnist", "cifar10"))
    if rnd.random() < 0.05:
        root.mkdir()  # an empty folder
    else:
        {"imagefolder": _imagefolder, "fashion-mnist": _fashion, "cifar10": _cifar}[dataset](rnd, root)
    space = {"imagefolder": "digits", "fashion-mnist": "fashion-mnist", "cifar10": "cifar10"}[dataset]
    if rnd.random() < 0.1:
        space = "digits"  # a space whose input does not fit the data
    return ["train", "--dataset", dataset, "--data-dir", str(root), "--space", space, "--epochs", "1",
            "--limit", "10", "--batch-size", "8", "--out", str(folder / "run")]


KINDS: dict[str, Callable[[random.Random, Path, Bases], list[str]]] = {
    "budget": budget_case,
    "space_yaml": space_case,
    "arch_yaml": arch_case,
    "measurements_csv": csv_case,
    "predictor": predictor_case,
    "checkpoint": checkpoint_case,
    "subnet_file": subnet_case,
    "dataset": dataset_case,
    "storage": storage_case,
}


def make_case(kind: str, rnd: random.Random, folder: Path, bases: Bases) -> list[str]:
    """The `nas` arguments of one random case of `kind`, its files written under `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    return KINDS[kind](rnd, folder, bases)
