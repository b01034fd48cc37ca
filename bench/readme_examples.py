"""Rebuild the README's example outputs by running the commands on a fresh $NAS_HOME.

The README's example blocks sit between `<!-- example:NAME:start -->` and `<!-- example:NAME:end
-->`. Each is regenerated here, as a new user would see it: in a fresh folder with a fresh
$NAS_HOME (the default supernet trained first, as the first `nas search` does), stderr lines
first, each command's progress lines cut to the first and the last with `...` between.
NAS_THREADS=1, so that the same machine gives the same figures under any load (a float sum
over two threads may round differently from one over one). The machine is recorded in the
README beside the blocks; tests/test_readme_examples.py (slow suite) runs this script and
compares its blocks with the README's: exactly, up to run-specific names and times, on the
same CPU model; up to every number on another (its kernels round differently).

    python bench/readme_examples.py           # print the blocks (about 6 minutes on 2 cores)
    python bench/readme_examples.py --write   # and replace them in README.md
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from _common import machine  # puts the repository on sys.path

ROOT = Path(__file__).resolve().parent.parent
MACHINE_LINE = re.compile(r"<!-- examples: made by `python bench/readme_examples.py --write` on (.*?) -->")
_PROGRESS = re.compile(r"^(epochs|search|profile [\w-]+|verify on [\w-]+): \d+/\d+ \(")

# name -> the commands of its block; {best} is the folder of the block's last search.
EXAMPLES: dict[str, list[list[str]]] = {
    "search-2ms": [["search", "--device", "iphone", "--budget", "2ms"]],
    "search-extract": [["search", "--device", "iphone", "--budget", "0.15ms"],
                       ["extract", "{best}/best.yaml", "--measure"]],
}


def block(name: str) -> tuple[str, str]:
    return f"<!-- example:{name}:start -->", f"<!-- example:{name}:end -->"


def _env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("RAY_ADDRESS", "OMP_NUM_THREADS")}
    env.update(NAS_HOME=str(home), NAS_THREADS="1", COLUMNS="200",
               PYTHONPATH=os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p))
    return env


def _shown(stderr: str) -> list[str]:
    """stderr with each run of progress lines cut to its first and last line, `...` between."""
    lines, out = stderr.splitlines(), []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and _PROGRESS.match(lines[j]):
            j += 1
        if j - i > 2:
            out += [lines[i], "...", lines[j - 1]]
            i = j
        elif j > i:
            out += lines[i:j]
            i = j
        else:
            out.append(lines[i])
            i += 1
    return out


def _nas(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    done = subprocess.run([sys.executable, "-m", "nas", *args], env=env, cwd=cwd, capture_output=True,
                          text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"nas {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
    return done


def generate() -> dict[str, str]:
    """Each example's block text (the fenced code, without the markers)."""
    with tempfile.TemporaryDirectory() as tmp:
        cwd, env = Path(tmp) / "work", _env(Path(tmp) / "home")
        cwd.mkdir()
        _nas(["train"], env, cwd)  # the default supernet, as the first search trains it
        blocks = {}
        for name, commands in EXAMPLES.items():
            lines, best = [], ""
            for template in commands:
                args = [a.format(best=best) for a in template]
                done = _nas(args, env, cwd)
                lines += [f"$ nas {' '.join(args)}", *_shown(done.stderr), *done.stdout.splitlines()]
                found = re.search(r"^next: nas extract (\S+)/best\.yaml$", done.stdout, re.MULTILINE)
                best = found.group(1) if found else best
            blocks[name] = "\n".join(["```", *lines, "```"])
    return blocks


def where() -> str:
    m = machine()
    return f"{m['cpu']}, {m['cores']} cores, torch {m['torch']}, NAS_THREADS=1"


_RUN_SPECIFIC = [
    (re.compile(r"(measured on this CPU [^:]*): median \S+ ms, fastest \S+ ms"), r"\1: <timed>"),
    (re.compile(r"\d{8}-\d{6}"), "<time>"),                        # folder names: runs/search/...-<time>
    (re.compile(r"\b\d+(\.\d+)?/s\b"), "<rate>/s"),                  # 44.3/s
    (re.compile(r"\b\d+ img/s\b"), "<rate> img/s"),
    (re.compile(r"\b\d+(\.\d+)? ?s\b"), "<seconds>"),                 # 8s, 7.2 s
]
_NUMBER = re.compile(r"\d+(\.\d+)?")


def normalized(text: str, *, numbers: bool = False) -> str:
    """`text` with run-specific names and times replaced (and with `numbers`, every number)."""
    for pattern, stand_in in _RUN_SPECIFIC:
        text = pattern.sub(stand_in, text)
    return _NUMBER.sub("<n>", text) if numbers else text


def readme_blocks(text: str) -> dict[str, str]:
    """The README's example blocks, by name."""
    found = {}
    for name in EXAMPLES:
        start, end = block(name)
        if start in text and end in text:
            found[name] = text.split(start, 1)[1].split(end, 1)[0].strip("\n")
    return found


def rewrite(text: str, blocks: dict[str, str], made_on: str) -> str:
    for name, body in blocks.items():
        start, end = block(name)
        before, rest = text.split(start, 1)
        text = before + start + "\n" + body + "\n" + end + rest.split(end, 1)[1]
    line = f"<!-- examples: made by `python bench/readme_examples.py --write` on {made_on} -->"
    return MACHINE_LINE.sub(line, text) if MACHINE_LINE.search(text) else text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    blocks = generate()
    if not args.write:
        print("\n\n".join(f"{name}:\n{body}" for name, body in blocks.items()))
        return
    readme = ROOT / "README.md"
    readme.write_text(rewrite(readme.read_text(), blocks, where()))
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
