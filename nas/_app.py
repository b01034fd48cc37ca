"""The command group that turns every kind of bad input into one line and exit status 2."""

from __future__ import annotations

import errno
import os
import shlex
import sys
import traceback

import click

__all__ = ["EXIT_INPUT", "EXIT_INTERNAL", "Interrupted", "NasGroup", "fail", "resume_command"]

EXIT_INPUT = 2
EXIT_INTERNAL = 1
# OS errors that say a path the user gave does not work as one: missing, a folder where a file
# was meant (or the reverse, or a file where a folder is to be made), not allowed, too long, a loop.
_PATH_ERRNOS = {errno.ENOENT, errno.EISDIR, errno.ENOTDIR, errno.EEXIST, errno.EACCES, errno.EPERM,
                errno.ENAMETOOLONG, errno.ELOOP}


def _command_path(group: click.Group, args: list[str]) -> str:
    """`nas space show` for `["space", "show", "x.yaml"]`: the command names at the front of args."""
    names, command = ["nas"], group
    for token in args:
        sub = command.commands.get(token) if isinstance(command, click.Group) else None
        if sub is None:
            break
        names.append(token)
        command = sub
    return " ".join(names)


class Interrupted(KeyboardInterrupt):
    """Ctrl-C during long work, with the line that says how to continue it."""

    def __init__(self, how_to_resume: str) -> None:
        super().__init__(how_to_resume)
        self.how_to_resume = how_to_resume


def resume_command(ctx: click.Context, **values: object) -> str:
    """The command line of this run with `values` in place of (or added to) its options.

    Every option with a value is written out, defaults included, so the line still means
    the same run if a default changes; a flag appears when it is on. What `ctx` resolved
    after parsing (a default output folder, a default supernet) goes in through `values`.
    """
    words = ctx.command_path.split()
    for param in ctx.command.params:
        if not isinstance(param, click.Option) or param.name is None:
            continue
        value = values.get(param.name, ctx.params.get(param.name))
        if value is None or value is False:
            continue
        words += [param.opts[-1]] if param.is_flag else [param.opts[-1], str(value)]
    return " ".join(shlex.quote(w) for w in words)


def _stopped(cause: BaseException | None, argv: list[str]) -> str:
    from search_space.errors import RerunToContinue

    if isinstance(cause, Interrupted):
        return f"interrupted: {cause.how_to_resume}"
    if isinstance(cause, RerunToContinue):
        return f"interrupted: {cause}; continue with the same command: {shlex.join(['nas', *argv])}"
    return "interrupted" if isinstance(cause, KeyboardInterrupt) else "aborted"


def fail(message: str) -> None:
    """Stop a command: one line on stderr, exit status 2."""
    raise click.UsageError(message)


def _one_line(text: str) -> str:
    return " ".join(str(text).split())


def _internal_error(where: str, exc: Exception) -> int:
    if os.environ.get("NAS_DEBUG"):
        traceback.print_exc()
    click.echo(f"{where}: internal error: {type(exc).__name__}: {_one_line(str(exc))} "
               "(set NAS_DEBUG=1 for the traceback, and please report it)", err=True)
    return EXIT_INTERNAL


class NasGroup(click.Group):
    """A click group whose `main` never shows a traceback for bad input.

    Usage errors, `search_space.InputError` (bad files, values, architectures) and OS
    errors that say a user's path does not work (missing, not allowed, too long) exit 2
    with ``nas <command>: error: <what> `` on one line; anything else is an internal error
    (exit 1, the traceback only with NAS_DEBUG=1).
    """

    def main(self, args=None, prog_name=None, complete_var=None, standalone_mode=True, **extra):
        from nas._progress import note_first_line
        from search_space.errors import InputError

        note_first_line("")  # a note belongs to the command that set it, not to a later one in process
        argv = list(sys.argv[1:] if args is None else args)
        where = _command_path(self, argv)
        try:
            code = super().main(args=args, prog_name=prog_name or "nas", complete_var=complete_var,
                                standalone_mode=False, **extra)
        except click.exceptions.Exit as exc:
            code = exc.exit_code
        except click.exceptions.NoArgsIsHelpError as exc:
            click.echo(exc.ctx.get_help() if exc.ctx else str(exc))
            code = 0
        except click.UsageError as exc:
            click.echo(f"{where}: error: {_one_line(exc.format_message())} "
                       f"(see '{where} --help')", err=True)
            code = EXIT_INPUT
        except click.Abort as exc:  # click turns Ctrl-C into Abort, keeping the interrupt as its cause
            click.echo(f"{where}: {_stopped(exc.__cause__, argv)}", err=True)
            code = 130
        except click.ClickException as exc:
            click.echo(f"{where}: error: {_one_line(exc.format_message())}", err=True)
            code = exc.exit_code
        except InputError as exc:
            click.echo(f"{where}: error: {_one_line(str(exc))}", err=True)
            code = EXIT_INPUT
        except OSError as exc:
            if exc.errno in _PATH_ERRNOS:
                click.echo(f"{where}: error: {exc.filename or ''}: {exc.strerror}", err=True)
                code = EXIT_INPUT
            else:
                code = _internal_error(where, exc)
        except KeyboardInterrupt as exc:
            click.echo(f"{where}: {_stopped(exc, argv)}", err=True)
            code = 130
        except Exception as exc:  # noqa: BLE001 - the last line of defence
            code = _internal_error(where, exc)
        if not standalone_mode:
            return code
        sys.exit(code if isinstance(code, int) else 0)
