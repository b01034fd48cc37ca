"""`nas latency serve`: the latency agent (`latency_agent.server.serve`) started from the nas command line."""

from __future__ import annotations

import click

from latency_agent.limits import DEFAULT_PORT, Limits, limits_from
from latency_agent.startup import RUNTIMES

__all__ = ["serve"]

_DEFAULT = Limits()


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=DEFAULT_PORT, show_default=True,
              help="Port (0: any free port, printed at start).")
@click.option("--token-file", type=click.Path(dir_okay=False), default=None,
              help="The access token's file (default: $NAS_HOME/agent/token; made on the first start, 0600).")
@click.option("--runtime", type=click.Choice(RUNTIMES), default="onnxruntime", show_default=True,
              help="Runtime to time with.")
@click.option("--threads", type=click.IntRange(1, 256), default=1, show_default=True,
              help="Intra-op threads.")
@click.option("--max-upload-mb", type=click.FloatRange(0.001, 4096), default=_DEFAULT.max_body_bytes / 2**20,
              show_default=True, help="Largest request body, in MiB.")
@click.option("--request-timeout-s", type=click.FloatRange(0.1, 3600), default=_DEFAULT.request_timeout_s,
              show_default=True, help="Time for a whole request to arrive.")
@click.option("--max-timing-s", type=click.FloatRange(1, 86400), default=_DEFAULT.max_timing_s,
              show_default=True, help="Most timing work per request, and the longest wait for a turn.")
def serve(host: str, port: int, token_file: str | None, runtime: str, threads: int, max_upload_mb: float,
          request_timeout_s: float, max_timing_s: float) -> None:
    """Time ONNX models on this machine for a search running elsewhere (HTTP + JSON, protocol v1).

    Every request needs the token in the token file. The agent also runs without torch or the
    rest of vit-nas: `python -m latency_agent serve` with numpy, onnxruntime and onnx installed.

    \b
    Examples:
      nas latency serve                       # 127.0.0.1:8765, token in $NAS_HOME/agent/token
      nas latency serve --host 0.0.0.0 --threads 4   # reachable on the LAN, 4 intra-op threads
    """
    from latency_agent.server import AgentSetupError
    from latency_agent.server import serve as serve_agent
    from search_space.errors import InputError

    limits = limits_from(max_upload_mb=max_upload_mb, request_timeout_s=request_timeout_s,
                         max_timing_s=max_timing_s)
    try:
        serve_agent(host, port, token_file, threads, runtime=runtime, limits=limits,
                    say=lambda line: click.echo(line, err=True))
    except AgentSetupError as exc:
        raise InputError(str(exc)) from None
