"""The README: its results table is exactly what bench/report.py builds from bench/results, and
every command and option its commands table shows exists."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_results_match_the_benchmark_files():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "report.py")], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out in (ROOT / "README.md").read_text(), "run: python bench/report.py --write"


def _readme_commands() -> list[str]:
    """The usage lines of the README's commands table: `| `nas ...` | ... |`."""
    return re.findall(r"^\| `(nas [^`]+)` \|", (ROOT / "README.md").read_text(), flags=re.MULTILINE)


def test_readme_commands_exist_with_the_options_it_shows():
    import click

    from nas.cli import main

    usages = _readme_commands()
    assert len(usages) >= 10, usages
    for usage in usages:
        command, words = main, usage.replace("\\|", "|").split()[1:]
        while isinstance(command, click.Group) and words and words[0] in command.commands:
            command = command.commands[words.pop(0)]
        assert not isinstance(command, click.Group) and not command.hidden, usage
        options = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
        shown = set(re.findall(r"(?<![\w-])(--?[a-z][\w-]*)", " ".join(words)))
        assert shown <= options, (usage, sorted(shown - options))
        by_opt = {opt: p for p in command.params for opt in p.opts}
        for opt, values in re.findall(r"(--[\w-]+) ([\w-]+(?:\|[\w-]+)+)", " ".join(words)):
            choices = set(getattr(by_opt[opt].type, "choices", ()))
            assert set(values.split("|")) <= choices, (usage, opt, values, sorted(choices))
