"""`nas search`: the most accurate subnet within a latency budget on a device."""

from __future__ import annotations

import time
from pathlib import Path

import click

from nas._app import Interrupted, resume_command
from nas._progress import progress

__all__ = ["search"]

_PROFILE_ARCHS = 120


def _default_supernet(space_ref: str | None) -> Path:
    """The cached embedded default (digits) supernet, trained (or finished) first when needed."""
    from nas.train_cmd import default_supernet_dir, run_training
    from search_space import load_space
    from search_space.errors import InputError
    from supernet.checkpoint import load_checkpoint
    from supernet.train_config import preset

    space = load_space(space_ref or "digits")
    if space.fingerprint != load_space("digits").fingerprint:
        raise InputError(f"no supernet given for space {space.name!r}: only the embedded default "
                         f"(digits) is trained on demand; train one with `nas train --space {space_ref} "
                         "--dataset ...` and pass its supernet.pt with --supernet")
    config = preset("digits")
    folder = default_supernet_dir(space, config)
    path = folder / "supernet.pt"
    if path.is_file():
        data = load_checkpoint(path, space)
        if data["epoch"] >= config.epochs:
            return path
        click.echo(f"the default {space.name} supernet in {folder} stopped at epoch {data['epoch']}: "
                   "finishing its training first", err=True)
    else:
        click.echo(f"no trained {space.name} supernet yet: training the default one into {folder} first "
                   f"({config.epochs} epochs, a few minutes on 2 cores; done once, then cached)", err=True)
    run_training(config, folder, resume=path.is_file(), num_workers=None, ray_address=None)
    return path


def _ensure_predictor(device: str, supernet: Path) -> None:
    """A measured device without a predictor for the space: time archs here and fit one, saying so."""
    from latency_models import get_device, read_measurements
    from latency_models.profile_run import plan_profile, run_profile
    from search_space import SearchSpace
    from search_space.files import nas_home
    from supernet.checkpoint import load_checkpoint

    dev = get_device(device)
    space = SearchSpace.from_dict(load_checkpoint(supernet)["space"])
    if dev.stored_predictor(space) is not None or dev.source == "analytic":
        return
    if not dev.measurable:
        dev.predictor(space)  # raises the error that says how to import timings for it
    csv = nas_home() / "measurements" / dev.name / f"{space.name}-{space.fingerprint}.csv"
    todo, _ = plan_profile(dev, space, _PROFILE_ARCHS, csv)
    click.echo(f"no {dev.name} latency predictor for space {space.name} yet: timing {len(todo)} archs on "
               f"this machine into {csv} and fitting one first (done once, then cached)", err=True)
    with progress(len(todo), f"profile {dev.name}") as step:
        run_profile(dev, space, todo, csv, on_result=lambda m: step(f"{m.latency_ms_median:.3f} ms"))
    _, path = dev.fit(space, read_measurements(csv, space, device=dev.name))
    click.echo(f"wrote {dev.name} predictor to {path}", err=True)


@click.command()
@click.option("--device", required=True, help="Target device (see `nas devices`).")
@click.option("--budget", required=True, help="Latency budget: 2ms, 500us, 0.002s.")
@click.option("--space", "space_ref",
              help="Search space (built-in name or YAML). With --supernet, the checkpoint must be of "
                   "it; without, only digits: the cached default supernet.")
@click.option("--supernet", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A trained supernet.pt (from `nas train`; default: the digits supernet cached in "
                   "$NAS_HOME/supernets/, trained there on first use).")
@click.option("--strategy", type=click.Choice(["evolution", "random", "nsga2"]), default="evolution",
              show_default=True, help="Complexity-aware evolution, random search, or Optuna's NSGA-II "
              "(accuracy and latency, the budget as a constraint).")
@click.option("--population", type=click.IntRange(2, None), default=32, show_default=True,
              help="Archs evaluated per generation.")
@click.option("--generations", type=click.IntRange(1, None), default=10, show_default=True,
              help="Generations (population x generations archs evaluated in all).")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Random seed (same seed and settings, same answer).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: runs/search/<device>-<budget>-<time>/ in the current folder).")
@click.option("--resume", is_flag=True, help="Continue the search stored in --out (or --storage); "
              "with a --storage another run is using (same settings), join it.")
@click.option("--workers", type=click.IntRange(1, None), help="Evaluate on this many Ray actors.")
@click.option("--ray-address", help="Evaluate on this running Ray cluster (`ray start --head`).")
@click.option("--storage", help="Optuna storage: a journal file path, or an RDB URL such as "
              "sqlite:///study.db (default: OUT/study.journal).")
def search(device: str, budget: str, space_ref: str | None, supernet: Path | None, strategy: str,
           population: int, generations: int, seed: int, out: Path | None, resume: bool,
           workers: int | None, ray_address: str | None, storage: str | None) -> None:
    """Find the most accurate subnet within a latency budget on a device.

    Writes best.yaml (the chosen arch, for `nas extract`), history.csv (every evaluated
    arch), pareto.csv, pareto.png, search.json (settings, timings, best) and the Optuna
    journal study.journal to --out.

    \b
    In $NAS_HOME (default ~/.cache/vit-nas): with no --supernet, the default
    digits supernet is read from supernets/ (trained there on first use); a
    measured device (cpu) with no predictor for the space is first timed into
    measurements/ and its predictor fitted into predictors/.
    """
    import optuna

    from latency_models import get_device, parse_duration_ms
    from latency_models.duration import format_ms
    from search.run import SearchSettings, run_search
    from search_space import load_space
    from supernet.checkpoint import load_checkpoint

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    get_device(device)
    budget_ms = parse_duration_ms(budget)
    if resume and out is None and storage is None:
        raise click.UsageError("--resume needs the --out (or --storage) of the search to continue")
    if supernet is not None and space_ref is not None:
        load_checkpoint(supernet, load_space(space_ref))  # the checkpoint must be of that space
    settings = SearchSettings(device=device, budget_ms=budget_ms, strategy=strategy, population=population,
                              generations=generations, seed=seed)
    if supernet is None:
        supernet = _default_supernet(space_ref)
    _ensure_predictor(device, supernet)
    if out is None:
        out = Path("runs") / "search" / f"{device}-{format_ms(budget_ms)}-{time.strftime('%Y%m%d-%H%M%S')}"
    with progress(generations, "search", every_s=5.0) as step:
        def on_generation(g, evaluations, best):
            step(f"{evaluations} evaluated, best top-1 {best.accuracy:.3f} at {best.latency_ms:.4g} ms"
                 if best else f"{evaluations} evaluated")

        try:
            result = run_search(supernet, settings, out, storage=storage, resume=resume, workers=workers,
                                ray_address=ray_address, on_generation=on_generation,
                                on_note=lambda text: click.echo(text, err=True))
        except KeyboardInterrupt:
            raise Interrupted("every finished evaluation is stored; continue with " + resume_command(
                click.get_current_context(), supernet=supernet, out=out, resume=True)) from None
    best = result.best
    click.echo(f"best: top-1 {best.candidate.accuracy:.3f} (validation, inherited weights) at "
               f"{best.candidate.latency_ms:.4g} ms predicted on {device} (budget {budget_ms:g} ms), "
               f"{best.macs / 1e6:.2f} M MACs, {best.params / 1e3:.1f} k params")
    resumed = (f" ({result.evaluations - result.resumed_evaluations} in this run, the rest already stored)"
               if result.resumed_evaluations else "")
    click.echo(f"{result.evaluations} archs evaluated{resumed} in {result.timings['search_s']:.1f} s "
               f"({result.timings['candidates_per_s']:.1f}/s, {result.where})")
    click.echo(f"wrote best.yaml, history.csv, pareto.csv, pareto.png, search.json to {result.out}")
