"""`nas latency profile|fit|eval|bundle|import|serve`: thin wrappers over latency_models."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nas._progress import progress
from nas._threads import use_threads
from nas.agent_cmd import serve

__all__ = ["latency", "resolve_device"]

_EXISTING = click.Path(exists=True, dir_okay=False, path_type=Path)


def resolve_device(name: str | None, device_file: Path | None):
    """The device of `--device NAME` or `--device-file PATH` (both: they must agree)."""
    from latency_models import get_device
    from latency_models.devices import device_from_file
    from search_space.errors import InputError

    if device_file is None:
        if name is None:
            raise click.UsageError("give --device NAME (see `nas devices`) or --device-file PATH")
        return get_device(name)
    dev = device_from_file(device_file)
    if name is not None and name != dev.name:
        raise InputError(f"--device {name} but {device_file} describes device {dev.name!r}: give one of them")
    return dev


def _space(ref: str):
    from search_space import load_space

    return load_space(ref)


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f}%"


def _metrics_line(m: dict) -> str:
    return (f"n={m['n']}  MAPE {_pct(m['mape'])}  RMSE {m['rmse_ms']:.4g} ms  "
            f"within 5% {_pct(m['within_5pct'])}  within 10% {_pct(m['within_10pct'])}  "
            f"Kendall tau {m['kendall_tau']:.3f}")


@click.group()
def latency() -> None:
    """Measure latencies, fit per-device predictors, and bundle models to time on phones."""


def _device_opt(command):
    """--device NAME and --device-file PATH (a device a YAML file describes, e.g. a remote one)."""
    command = click.option("--device-file", type=_EXISTING,
                           help="A device described in a YAML file (e.g. a remote device and its agent) "
                                "instead of --device.")(command)
    return click.option("--device", help="Target device (see `nas devices`).")(command)

_space_opt = click.option("--space", "space_ref", required=True,
                          help="Search space: a YAML path or a built-in name (digits, cifar10, ...).")


@latency.command()
@_device_opt
@_space_opt
@click.option("--n", "count", type=click.IntRange(1, 100_000), default=100, show_default=True,
              help="Architectures to sample (complexity-aware).")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (same seed, same archs).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Measurements CSV; appended to, archs already in it are skipped.")
@click.option("--threads", type=click.IntRange(1, 256),
              help="ONNX Runtime intra-op threads of the timed runs (cpu; default: 1; recorded in each "
                   "row, part of what is measured). The exports' torch threads follow $NAS_THREADS, "
                   "else the load.")
@click.option("--repeats", type=click.IntRange(1, 100_000), help="Timed runs per arch (at least).")
def profile(device: str | None, device_file: Path | None, space_ref: str, count: int, seed: int, out: Path,
            threads: int | None, repeats: int | None) -> None:
    """Time N sampled archs of SPACE on DEVICE (cpu, cuda, or a remote device through its latency agent),
    appending a row per arch to the CSV --out.

    \b
    Examples:
      nas latency profile --device cpu --space digits --n 100 --out cpu.csv
      nas latency profile --device pi5 --space digits --n 100 --out pi5.csv   # $NAS_HOME/devices/pi5.yaml
    """
    from latency_models.csvio import check_machine
    from latency_models.profile_run import plan_profile, run_profile

    dev, space = resolve_device(device, device_file), _space(space_ref)
    use_threads(None)
    options = {k: v for k, v in (("threads", threads), ("repeats", repeats)) if v is not None}
    if not dev.measurable:
        dev.measure(space, [])  # raises the InputError that says how to get timings for it
    todo, skipped = plan_profile(dev, space, count, out, seed=seed)
    if todo:  # another machine's file, a wrong agent address or token: said before anything else
        check_machine(out, dev.fingerprint())
    if skipped:
        click.echo(f"resuming {out}: {skipped} of {skipped + len(todo)} archs already measured", err=True)
    with progress(len(todo), f"profile {dev.name}") as step:
        try:
            measured = run_profile(dev, space, todo, out,
                                   on_result=lambda m: step(f"{m.latency_ms_median:.3f} ms"), **options)
        except KeyboardInterrupt:
            from nas._app import Interrupted, resume_command

            left, done = plan_profile(dev, space, count, out, seed=seed)  # what the file holds now
            raise Interrupted(f"{done} of {done + len(left)} archs are measured in {out}; continue with "
                              + resume_command(click.get_current_context())) from None
    click.echo(f"wrote {measured} measurements to {out} "
               f"({skipped} already there, {measured + skipped} in all)")


def _check_store(out: Path | None) -> None:
    """No --out: the predictor goes under $NAS_HOME, which must be a folder (said before any reading)."""
    from search_space.files import check_nas_home

    if out is None:
        check_nas_home()


@latency.command()
@_device_opt
@_space_opt
@click.option("--data", type=_EXISTING, required=True, help="Measurements CSV from `nas latency profile`.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Predictor file (default: $NAS_HOME/predictors/<device>/<space>-<hash>.json).")
@click.option("--target", type=click.Choice(["median", "min"]), default="median", show_default=True,
              help="Fit the median latency, or the fastest run (steadier on a busy machine).")
def fit(device: str | None, device_file: Path | None, space_ref: str, data: Path, out: Path | None,
        target: str) -> None:
    """Fit DEVICE's latency predictor for SPACE on measured latencies, and store it.

    The predictor (JSON) goes to $NAS_HOME/predictors/<device>/<space>-<hash>.json unless --out
    says otherwise; `nas search` and `nas devices` read it from there.

    \b
    $NAS_HOME is ~/.cache/vit-nas unless set.

    \b
    Examples:
      nas latency fit --device cpu --space digits --data cpu.csv
      nas latency fit --device pi5 --space digits --data pi5.csv --target min
    """
    from latency_models import read_measurements

    dev, space = resolve_device(device, device_file), _space(space_ref)
    _check_store(out)
    rows = read_measurements(data, space, device=dev.name)
    pred, path = dev.fit(space, rows, out=out, target=target)
    click.echo(f"fitted on {len(rows)} archs; cross-validated: {_metrics_line(pred.metadata['cv_metrics'])}")
    click.echo(f"wrote predictor to {path}")


@latency.command(name="import")
@_device_opt
@_space_opt
@click.option("--data", type=_EXISTING, required=True,
              help="timings.csv of a bundle, filled in on the device (arch_json, latency_ms_median).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Predictor file (default: $NAS_HOME/predictors/<device>/<space>-<hash>.json).")
def import_timings(device: str | None, device_file: Path | None, space_ref: str, data: Path,
                   out: Path | None) -> None:
    """Fit DEVICE's predictor for SPACE from timings taken on the device (replaces its analytic model).

    Written where `nas latency fit` writes: $NAS_HOME/predictors/<device>/<space>-<hash>.json
    unless --out says otherwise.

    \b
    $NAS_HOME is ~/.cache/vit-nas unless set.

    \b
    Examples:
      nas latency import --device iphone --space digits --data bundle/timings.csv
    """
    from latency_models import read_measurements
    from latency_models.csvio import REQUIRED

    dev, space = resolve_device(device, device_file), _space(space_ref)
    _check_store(out)
    rows = read_measurements(data, space, device=dev.name, required=REQUIRED, skip_unmeasured=True)
    pred, path = dev.fit(space, rows, out=out)
    click.echo(f"imported {len(rows)} timings; cross-validated: {_metrics_line(pred.metadata['cv_metrics'])}")
    click.echo(f"wrote predictor to {path}")


def _eval_notice(device: str, pred, space, rows, data: Path) -> str | None:
    """A cpu predictor fitted on another machine than the timings it is judged on took (than this one,
    when they record none): one line (`identity.machine_notice`)."""
    from latency_models.identity import machine_notice

    timed = next((m.fingerprint for m in rows if m.fingerprint), None)
    if timed is None:
        return machine_notice(device, pred, space)
    return machine_notice(device, pred, space, here=timed, here_what=f"the timings in {data} were taken on")


@latency.command(name="eval")
@_device_opt
@_space_opt
@click.option("--data", type=_EXISTING, required=True, help="Held-out measurements CSV.")
@click.option("--predictor", "predictor_file", type=_EXISTING,
              help="A predictor file (default: the device's own predictor for SPACE).")
@click.option("--target", type=click.Choice(["median", "min"]), default="median", show_default=True,
              help="Compare with the median latency, or with the fastest run.")
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
def evaluate(device: str | None, device_file: Path | None, space_ref: str, data: Path,
             predictor_file: Path | None, target: str, as_json: bool) -> None:
    """How well DEVICE's predictor matches held-out measurements: n, MAPE, RMSE, within 5/10%, Kendall tau.

    \b
    Examples:
      nas latency eval --device cpu --space digits --data heldout.csv
    """
    from latency_models import LearnedPredictor, accuracy, read_measurements
    from latency_models.predictor import comparable_ms

    dev, space = resolve_device(device, device_file), _space(space_ref)
    rows = read_measurements(data, space, device=dev.name)
    pred = LearnedPredictor.load(predictor_file, space) if predictor_file else dev.predictor(space)
    notice = _eval_notice(dev.name, pred, space, rows, data)
    if notice:
        click.echo(notice, err=True)
    measured, steady = comparable_ms(pred, rows, target)
    metrics = accuracy(measured, pred.predict_ms([m.arch for m in rows]))
    if as_json:
        click.echo(json.dumps({"device": dev.name, "space": space.name, "predictor": pred.source,
                               "target": target, "at_reference_speed": steady, **metrics}, indent=2))
        return
    speed = ", at the predictor's reference speed" if steady else ""
    click.echo(f"{dev.name} on {space.name} ({pred.source} predictor, {target} latency{speed}): "
               f"{_metrics_line(metrics)}")


@latency.command()
@_device_opt
@_space_opt
@click.option("--n", "count", type=click.IntRange(1, 10_000), default=20, show_default=True,
              help="Subnets to bundle.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sampling seed (same seed, same archs).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="A new (or empty) folder for the bundle.")
@click.option("--format", "formats", default="coreml,onnx", show_default=True,
              help="Comma list of coreml, onnx.")
def bundle(device: str | None, device_file: Path | None, space_ref: str, count: int, seed: int, out: Path,
           formats: str) -> None:
    """Write N subnets of SPACE as Core ML + ONNX models with a manifest, to time on DEVICE.

    The folder --out gets the models, manifest.json, timings.csv (to fill in on the device,
    then `nas latency import`) and a README.md on how to time them.

    \b
    Examples:
      nas latency bundle --device iphone --space digits --n 20 --out bundle/
      nas latency bundle --device iphone --space digits --n 20 --format onnx --out bundle/
    """
    from latency_models.bundle import write_bundle

    dev, space = resolve_device(device, device_file), _space(space_ref)
    with progress(count, f"bundle {dev.name}") as step:
        result = write_bundle(dev.name, space, count, out, seed=seed,
                              formats=[f.strip() for f in formats.split(",") if f.strip()],
                              on_model=lambda i: step())
    click.echo(f"wrote {result.models} models, manifest.json, timings.csv and README.md to {result.folder}")


latency.add_command(serve)  # nas latency serve: the agent (nas/agent_cmd.py)
