"""The README's example outputs are what the commands print now (bench/readme_examples.py)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

import readme_examples  # noqa: E402


def test_normalizing_keeps_figures_and_drops_names_and_times():
    norm = readme_examples.normalized
    a = ("search: 10/10 (100%), 8s  320 evaluated\n320 archs evaluated in 7.2 s (44.3/s, ...)\n"
         "runs/search/iphone-2ms-20261123-111805")
    b = ("search: 10/10 (100%), 9s  320 evaluated\n320 archs evaluated in 6.1 s (52.0/s, ...)\n"
         "runs/search/iphone-2ms-20261205-090000")
    assert norm(a) == norm(b)
    assert norm(a) != norm(a.replace("320 evaluated", "321 evaluated"))
    assert norm(a) != norm(a.replace("iphone-2ms", "iphone-3ms"))
    assert norm("top-1 0.993", numbers=True) == norm("top-1 0.971", numbers=True)
    assert norm("top-1 0.993 at 0.1926 ms") != norm("top-1 0.971 at 0.1926 ms")
    timed = "measured on this CPU (ONNX Runtime, 1 thread): median {} ms, fastest {} ms"
    assert norm(timed.format("0.08809", "0.08518")) == norm(timed.format("0.1162", "0.1128"))


def test_every_example_block_is_in_the_readme_with_the_machine_it_was_made_on():
    text = (ROOT / "README.md").read_text()
    assert set(readme_examples.readme_blocks(text)) == set(readme_examples.EXAMPLES)
    assert readme_examples.MACHINE_LINE.search(text)


@pytest.mark.slow
def test_the_readme_examples_are_what_the_commands_print():
    text = (ROOT / "README.md").read_text()
    made_on = readme_examples.MACHINE_LINE.search(text).group(1)
    same_cpu = made_on.split(",")[0] == readme_examples.where().split(",")[0]
    fresh = readme_examples.generate()
    for name, body in readme_examples.readme_blocks(text).items():
        assert readme_examples.normalized(fresh[name], numbers=not same_cpu) == readme_examples.normalized(
            body, numbers=not same_cpu), name
