"""`nas search`: the most accurate subnet within a latency budget on a device."""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import ExitStack
from pathlib import Path

import click

from nas._app import Interrupted, resume_command
from nas._progress import progress
from nas._threads import threads_option, use_threads
from search.settings import DEFAULT_SCREEN, STRATEGIES

__all__ = ["search"]


class _Bars:
    """Progress of the work done before a search (training the default supernet, timing archs): a bar
    for each, one at a time, opened at its first step, since only then is it known to happen."""

    def __init__(self) -> None:
        self._stack = ExitStack()
        self._label: str | None = None
        self._step: Callable[..., None] = lambda info, at=None: None

    def step(self, label: str, total: int, info: str, every_s: float = 10.0, at: int | None = None) -> None:
        if label != self._label:
            self.close()
            self._label = label
            self._step = self._stack.enter_context(progress(total, label, every_s=every_s))
        self._step(info, at=at)

    def note(self, text: str) -> None:
        """A line on stderr, after the bar before it (a note ends the work it shows)."""
        self.close()
        click.echo(text, err=True)

    def close(self) -> None:
        self._stack.close()
        self._label = None

    def __enter__(self) -> _Bars:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()


def _prepare(device, supernet: Path | None, space_ref: str | None):
    """`prepare_search`, saying on stderr what it trains or times first, with progress."""
    from nas.train_cmd import epoch_info
    from search.prepare import prepare_search

    bars = _Bars()
    try:
        return prepare_search(
            device, supernet=supernet, space=space_ref, on_note=bars.note,
            on_epoch=lambda record, epochs: bars.step("epochs", epochs, epoch_info(record), every_s=0.0,
                                                      at=record["epoch"]),
            on_measurement=lambda m, total: bars.step(f"profile {device.name}", total,
                                                      f"{m.latency_ms_median:.3f} ms"))
    finally:
        bars.close()


@click.command()
@click.option("--device", help="Target device (see `nas devices`).")
@click.option("--device-file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A device described in a YAML file (e.g. a remote device and its latency agent).")
@click.option("--budget", help="Latency budget: 2ms, 500us, 0.002s.")
@click.option("--target", "target_texts", multiple=True, metavar="DEVICE:BUDGET",
              help="A target, e.g. iphone:2ms; repeat for several: one search serves them all (one study, "
                   "each arch evaluated once) and writes best-<device>-<budget>.yaml for each. In place of "
                   "--device and --budget.")
@click.option("--space", "space_ref",
              help="Search space (built-in name or YAML). With --supernet, the checkpoint must be of "
                   "it (its head may have the dataset's own class count); without, only digits: the "
                   "cached default supernet.")
@click.option("--supernet", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A trained supernet.pt (from `nas train`; default: the digits supernet cached in "
                   "$NAS_HOME/supernets/, trained there on first use).")
@click.option("--strategy", type=click.Choice(STRATEGIES), default="evolution",
              show_default=True, help="Complexity-aware evolution, random search, or Optuna's NSGA-II "
              "(accuracy and latency, the budget as a constraint).")
@click.option("--population", type=click.IntRange(2, None),
              help="Archs evaluated per generation (default: 32, or the shipped supernet's search size).")
@click.option("--generations", type=click.IntRange(1, None),
              help="Generations, population x generations archs evaluated in all (default: 10, or the "
                   "shipped supernet's search size).")
@click.option("--val-images", type=click.IntRange(1, None), metavar="N",
              help="Score each candidate on the first N images of the supernet's validation split (a "
                   "fixed, stratified subset; default: all of them, or the shipped supernet's search size).")
@click.option("--seed", type=click.IntRange(0, None), default=0, show_default=True,
              help="Random seed (same seed and settings, same answer).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: runs/search/<device>-<budget>-<time>/ in the current folder).")
@click.option("--resume", is_flag=True, help="Continue the search stored in --out (or --storage); "
              "with a --storage another run is using (same settings), join it.")
@click.option("--workers", type=click.IntRange(1, None), help="Evaluate on this many Ray actors.")
@click.option("--ray-address", help="Evaluate on this running Ray cluster (`ray start --head`).")
@click.option("--storage", help="Optuna storage: a journal file path, or an RDB URL such as "
              "sqlite:///study.db (default: OUT/study.journal).")
@click.option("--verify", type=click.IntRange(0, None), default=0, show_default=True, metavar="K",
              help="After the search, time the K most accurate feasible candidates on the device itself "
              "(cpu: here; a remote device: through its latency agent) and choose the most accurate whose "
              "measured latency fits the budget: the median, or the fastest run when the device's "
              "predictor was fitted on that (`nas latency fit --target min`). best.yaml and search.json "
              "then hold predicted and measured latency. If none of the K fits, one line on stderr says "
              "so and names the fastest; best.yaml keeps the unverified best (verified.fits: false) and "
              "the exit status is still 0: the search succeeded, check verified.fits in scripts. Only "
              "devices that can be timed (cpu, cuda, remote); 0: off. With --resume of a finished "
              "search, verifies it again.")
@click.option("--accuracy-predictor/--no-accuracy-predictor", default=None,
              help="Evolution (on by default) breeds --screen times as many children as it evaluates, and a "
                   "predictor of top-1 (gradient-boosted trees), fitted on every arch evaluated so far, "
                   "picks which: better archs for the same evaluations (bench/search_quality.py); "
                   "search.json records its Kendall tau per generation. --no-accuracy-predictor: every "
                   "child bred is evaluated (how searches ran before; a resume of such a search needs it).")
@click.option("--screen", type=click.IntRange(2, None), metavar="K",
              help=f"Children bred per child evaluated, for the accuracy predictor (default: "
                   f"{DEFAULT_SCREEN}).")
@click.option("--data-dir", type=click.Path(exists=True, path_type=Path),
              help="Where the supernet's dataset is, to score subnets on its validation split (default: "
                   "where its training read it; for a shipped supernet, $NAS_DATA_DIR/<dataset>).")
@threads_option()
def search(device: str | None, device_file: Path | None, budget: str | None, target_texts: tuple[str, ...],
           space_ref: str | None,
           supernet: Path | None, strategy: str, population: int | None, generations: int | None,
           val_images: int | None, seed: int,
           out: Path | None, resume: bool,
           workers: int | None, ray_address: str | None, storage: str | None, verify: int,
           accuracy_predictor: bool | None, screen: int | None, data_dir: Path | None,
           threads: int | None) -> None:
    """Find the most accurate subnet within a latency budget on a device.

    Writes best.yaml (the chosen arch, for `nas extract`), history.csv, pareto.csv, pareto.png,
    search.json and the Optuna journal study.journal to --out. In $NAS_HOME (default:
    ~/.cache/vit-nas): with no --supernet, the default digits supernet is read from supernets/
    (trained there on first use); a measured device (cpu) with no predictor for the space is
    first timed into measurements/ and its predictor fitted into predictors/.

    \b
    Examples:
      nas search --device iphone --budget 2ms
      nas search --device cpu --budget 0.3ms --verify 3
      nas search --device pi5 --budget 5ms --supernet runs/train/<run>/supernet.pt
      nas search --device iphone --budget 2ms --out my-search --resume   # after Ctrl-C
      nas search --target iphone:2ms --target pixel:4ms --target cpu:1.5ms
      nas search --device iphone --budget 2ms --no-accuracy-predictor   # evaluate every child bred
    """
    import optuna

    from search.driver import run_search
    from search.settings import SearchSettings

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    use_threads(threads)
    targets, devs = _targets(device, device_file, budget, target_texts, verify)
    if resume and out is None and storage is None:
        raise click.UsageError("--resume needs the --out (or --storage) of the search to continue")
    given = {"population": population, "generations": generations, "val_limit": val_images}
    size = {k: v for k, v in given.items() if v is not None}
    settings = SearchSettings(targets=targets, strategy=strategy, seed=seed,
                              screen=_screen(accuracy_predictor, screen, strategy), **size)
    ready = _prepare(devs[0], supernet, space_ref)
    settings, size_note = _shipped_size(settings, ready.supernet, given)
    predictors = [ready.predictor] + [_prepare(dev, ready.supernet, None).predictor for dev in devs[1:]]
    if len(targets) == 1:
        predictors, devs = predictors[0], devs[0]
    out = out or _default_out(targets)
    result = _run(run_search, ready.supernet, settings, out, size_note, predictors=predictors, devices=devs,
                  storage=storage, resume=resume, workers=workers, ray_address=ray_address, verify=verify,
                  data_dir=data_dir)
    if result.targets:
        _say_targets(result)
    else:
        _say_result(result, targets[0].device, targets[0].budget_ms)


def _shipped_size(settings, supernet: Path, given: dict[str, int | None]):
    """`settings` with the search size the shipped supernet's record sets where the user gave none
    (`supernet.shipped.ZooEntry.search_defaults`), and the line that says so (None where nothing
    was taken: any other supernet, or every size given)."""
    import dataclasses

    from supernet.shipped import shipped_entry

    entry = shipped_entry(supernet)
    taken = {k: v for k, v in (entry.search_defaults if entry else {}).items() if given[k] is None}
    if not taken:
        return settings, None
    settings = dataclasses.replace(settings, **taken)
    images = f"{settings.val_limit} validation images" if settings.val_limit else "every validation image"
    return settings, (f"search size: population {settings.population} x {settings.generations} generations, "
                      f"{images} (the shipped supernet's; --population, --generations and --val-images "
                      "change it)")


def _screen(accuracy_predictor: bool | None, screen: int | None, strategy: str) -> int | None:
    """The search's screen from the flags: None for the strategy's default, 1 for no predictor."""
    if accuracy_predictor is False:
        if screen is not None:
            raise click.UsageError("--screen is the accuracy predictor's: drop --no-accuracy-predictor")
        return 1
    if strategy != "evolution":
        if accuracy_predictor or screen is not None:
            raise click.UsageError(f"--accuracy-predictor and --screen are evolution's, not {strategy}'s")
        return None
    return screen


def _run(run_search, supernet: Path, settings, out: Path, size_note: str | None, **kwargs):
    """`run_search` with a progress bar per generation, then one for the verification; Ctrl-C says how
    to continue. `size_note` follows the search's line naming the shipped supernet (so a search that
    stops before, e.g. for want of the data, says one line)."""
    targets = settings.targets
    bars = _Bars()  # the verification's, once the search's is closed
    with ExitStack() as search_bar, bars:
        step = search_bar.enter_context(progress(settings.generations, "search", every_s=5.0))

        def on_generation(g, evaluations, best):
            where = f" on {targets[0].label}" if len(targets) > 1 else ""
            step(f"{evaluations} evaluated, best top-1 {best.accuracy:.3f} at {best.latency_ms:.4g} ms{where}"
                 if best else f"{evaluations} evaluated")

        def on_timed(m, total):
            search_bar.close()
            bars.step("verify", total, f"{m.latency_ms_median:.4g} ms")

        def on_note(text):
            click.echo(text, err=True)
            if size_note and text.startswith("using the shipped"):
                click.echo(size_note, err=True)

        predictor, device = kwargs.pop("predictors"), kwargs.pop("devices")
        try:
            return run_search(supernet, settings, out, predictor=predictor, device=device,
                              on_generation=on_generation, on_note=on_note,
                              on_measurement=on_timed, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted("every finished evaluation is stored; continue with " + resume_command(
                click.get_current_context(), supernet=supernet, out=out, resume=True,
                population=settings.population, generations=settings.generations,
                val_images=settings.val_limit)) from None


def _targets(device: str | None, device_file: Path | None, budget: str | None, texts: tuple[str, ...],
             verify: int) -> tuple[tuple, list]:
    """The search's targets and their devices, from --target or from --device/--device-file and --budget."""
    from latency_models import parse_duration_ms
    from search.targets import Target, check_targets, parse_target
    from search_space.errors import InputError

    if texts:
        if device or device_file or budget:
            raise click.UsageError("give --target (one or more), or --device and --budget, not both")
        targets = check_targets(parse_target(t) for t in texts)
        devs = []
        for t in targets:
            try:
                devs.append(_checked_device(t.device, None, verify))
            except InputError as e:
                raise InputError(f"target {t.label}: {e}") from None
        return targets, devs
    if budget is None:
        raise click.UsageError("give --budget (e.g. 2ms) with --device, or --target DEVICE:BUDGET")
    dev = _checked_device(device, device_file, verify)
    return (Target(dev.name, parse_duration_ms(budget)),), [dev]


def _checked_device(device: str | None, device_file: Path | None, verify: int):
    """The target device; with --verify, one that can be timed (said before anything is trained or timed)."""
    from nas.latency_cmd import resolve_device
    from search.verify import check_verifiable

    dev = resolve_device(device, device_file)
    if verify:
        check_verifiable(dev)
    return dev


def _default_out(targets) -> Path:
    """runs/search/<device>-<budget>-<time>/, or runs/search/<n>-targets-<time>/ for several."""
    name = targets[0].stem if len(targets) == 1 else f"{len(targets)}-targets"
    return Path("runs") / "search" / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}"


def _say_targets(result) -> None:
    """One line per target, then what was evaluated and written."""
    for a in result.targets:
        best, v = a.best, a.verification
        measured = f", {v.of(best).measured_ms:.4g} ms measured ({v.statistic})" if v is not None else ""
        c = best.candidate
        click.echo(f"{a.target.label}: top-1 {c.accuracy:.3f} at {c.latency_ms:.4g} ms predicted{measured}"
                   f", {best.macs / 1e6:.2f} M MACs, {best.params / 1e3:.1f} k params"
                   + ("" if a.binds else " (budget does not bind)"))
        if v is not None:
            _say_verification(v)
    resumed = (f" ({result.evaluations - result.resumed_evaluations} in this run, the rest already stored)"
               if result.resumed_evaluations else "")
    t = result.timings
    click.echo(f"{result.evaluations} archs evaluated for {len(result.targets)} targets{resumed} in "
               f"{t['search_s']:.1f} s ({t['candidates_per_s']:.1f}/s, {result.where})")
    names = ", ".join(a.file.name for a in result.targets)
    click.echo(f"wrote {names}, history.csv, pareto.csv, pareto.png, search.json to {result.out}")
    click.echo(f"next: nas extract {result.targets[0].file}")


def _say_result(result, device: str, budget_ms: float) -> None:
    best, v = result.best, result.verification
    measured = f", {v.of(best).measured_ms:.4g} ms measured ({v.statistic})" if v is not None else ""
    click.echo(f"best: top-1 {best.candidate.accuracy:.3f} (validation, inherited weights) at "
               f"{best.candidate.latency_ms:.4g} ms predicted{measured} on {device} "
               f"(budget {budget_ms:g} ms), "
               f"{best.macs / 1e6:.2f} M MACs, {best.params / 1e3:.1f} k params")
    if v is not None:
        _say_verification(v)
    resumed = (f" ({result.evaluations - result.resumed_evaluations} in this run, the rest already stored)"
               if result.resumed_evaluations else "")
    click.echo(f"{result.evaluations} archs evaluated{resumed} in {result.timings['search_s']:.1f} s "
               f"({result.timings['candidates_per_s']:.1f}/s, {result.where})")
    click.echo(f"wrote best.yaml, history.csv, pareto.csv, pareto.png, search.json to {result.out}")
    click.echo(f"next: nas extract {result.out / 'best.yaml'}")


def _say_verification(v) -> None:
    """One line per timed finalist, then the verdict."""
    for i, t in enumerate(v.timed, 1):
        m = t.measurement
        fastest = m.latency_ms_min if m.latency_ms_min is not None else m.latency_ms_median
        click.echo(f"verify {i}/{len(v.timed)}: top-1 {t.row.candidate.accuracy:.3f}, predicted "
                   f"{t.row.candidate.latency_ms:.4g} ms, measured median {m.latency_ms_median:.4g} / min "
                   f"{fastest:.4g} / p90 {m.latency_ms_p90:.4g} ms: "
                   f"{'fits' if t.fits else 'over'} {v.budget_ms:g} ms ({v.statistic})")
    if v.pick is not None:
        rank = v.timed.index(v.pick) + 1
        click.echo(f"verified on {v.device}: candidate {rank} of {len(v.timed)} is the most accurate that "
                   f"fits when measured ({v.pick.measured_ms:.4g} ms {v.statistic} <= {v.budget_ms:g} ms)")
    else:
        click.echo(f"verified on {v.device}: none of the {len(v.timed)} fits when measured; best.yaml "
                   "keeps the unverified best (verified.fits: false)")
