"""Every command's help has examples and shows its defaults in one style."""

from __future__ import annotations

import click
import pytest

from nas.cli import main
from tests.nas.test_cli import nas


def _leaves(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    out = []
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            out += _leaves(command, (*prefix, name))
        else:
            out.append((*prefix, name))
    return out


COMMANDS = _leaves(main)


def test_every_command_is_covered():
    assert len(COMMANDS) >= 14 and ("latency", "serve") in COMMANDS and ("search",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_help_has_examples_and_one_default_style(path):
    r = nas(*path, "--help")
    assert r.exit_code == 0, r.output
    assert "Examples:" in r.output
    examples = r.output.split("Examples:", 1)[1].split("Options:", 1)[0]
    assert f"nas {' '.join(path)}" in examples
    assert "[default:" not in r.output
