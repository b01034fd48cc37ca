"""`python -m latency_agent serve` (or `nas-agent serve`): the agent's command line, on argparse.

argparse, not click: the agent runs on devices that have Python, numpy and onnxruntime and
nothing else of vit-nas's dependencies. Bad arguments and settings it cannot start with are one
line on stderr and exit status 2; Ctrl-C (or SIGTERM) stops it with status 0.
"""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from latency_agent.limits import DEFAULT_PORT, Limits, limits_from
from latency_agent.startup import RUNTIMES, AgentSetupError

__all__ = ["main"]

_PROG = "python -m latency_agent"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message} (see '{self.prog} --help')\n")
        sys.exit(2)


def _bounded(kind: Callable[[str], float], low: float, high: float) -> Callable[[str], float]:
    def parse(text: str) -> float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is not in [{low:g}, {high:g}]")
        return value

    return parse


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=_PROG, description="The vit-nas latency agent: times ONNX models on this "
                     "machine for a search running elsewhere.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    serve = commands.add_parser("serve", help="Serve protocol v1 over HTTP until Ctrl-C.")
    default = Limits()
    add = serve.add_argument
    add("--host", default="127.0.0.1", help="Address to listen on (default 127.0.0.1).")
    add("--port", type=_bounded(int, 0, 65535), default=DEFAULT_PORT,
        help=f"Port (default {DEFAULT_PORT}; 0: any free port, printed at start).")
    add("--token-file", help="The access token's file (default $NAS_HOME/agent/token; made on the first "
        "start, mode 0600).")
    add("--runtime", choices=RUNTIMES, default="onnxruntime", help="Runtime to time with.")
    add("--threads", type=_bounded(int, 1, 256), default=1, help="Intra-op threads (default 1).")
    add("--max-upload-mb", type=_bounded(float, 0.001, 4096), default=default.max_body_bytes / 2**20,
        help="Largest request body, MiB (default 64).")
    add("--request-timeout-s", type=_bounded(float, 0.1, 3600), default=default.request_timeout_s,
        help="Time for a whole request to arrive (default 30).")
    add("--max-timing-s", type=_bounded(float, 1, 86400), default=default.max_timing_s,
        help="Most timing work per request, and longest wait for a turn (default 600).")
    child = commands.add_parser("child", help="Answer protocol v1 framed on stdin/stdout (the local cpu "
                                "device's timing process; latency_agent.child).")
    child.add_argument("--threads", type=_bounded(int, 1, 256), default=1,
                       help="Intra-op threads (default 1).")
    return parser


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    """Run the agent's command line; returns the exit status."""
    args = _parser().parse_args(argv)
    if args.command == "child":
        from latency_agent.child import serve_child

        return serve_child(args.threads)
    try:
        from latency_agent.server import serve

        signal.signal(signal.SIGTERM, _interrupt)
        serve(args.host, args.port, args.token_file, args.threads, runtime=args.runtime,
              limits=limits_from(max_upload_mb=args.max_upload_mb, request_timeout_s=args.request_timeout_s,
                                 max_timing_s=args.max_timing_s))
    except AgentSetupError as exc:
        sys.stderr.write(f"{_PROG}: error: {exc}\n")
        return 2
    except ImportError as exc:
        sys.stderr.write(f"{_PROG}: error: the agent needs {exc.name}: pip install numpy onnxruntime onnx\n")
        return 2
    except KeyboardInterrupt:  # before it listens (serve itself stops quietly)
        sys.stderr.write(f"{_PROG}: interrupted\n")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
