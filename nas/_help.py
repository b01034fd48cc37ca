"""One style of default in every command's help: "(default: X)" in the option's own sentence."""

from __future__ import annotations

import click

__all__ = ["unify_defaults"]


def _shown(option: click.Option) -> str:
    if option.is_flag and option.secondary_opts:  # --distill/--no-distill
        return option.opts[0] if option.default else option.secondary_opts[0]
    return str(option.default)


def unify_defaults(command: click.Command) -> None:
    """Turn click's `[default: X]` (show_default=True) into `(default: X)` at the end of the help,
    the style of the options whose default is a sentence ("default: the dataset's preset")."""
    for param in command.params:
        if isinstance(param, click.Option) and param.show_default is True and param.default is not None:
            text = (param.help or "").rstrip()
            end = "." if text.endswith(".") else ""
            param.help = f"{text.removesuffix('.')} (default: {_shown(param)}){end}".lstrip()
            param.show_default = False
    if isinstance(command, click.Group):
        for sub in command.commands.values():
            unify_defaults(sub)
