"""`nas retrain DIR --trials N`: tune the fine-tune itself with Ray Tune (Optuna searcher, ASHA).

Each trial is a short `supernet.finetune` run with its own learning rate, weight decay,
distillation weight and temperature, reporting validation top-1 after every epoch; ASHA (Li et
al., "A System for Massively Parallel Hyperparameter Tuning", MLSys 2020) stops the poor ones
once half their epochs are done, and Optuna's TPE proposes the next settings from the finished
ones. The first trial is the default settings, and it runs all its epochs (ASHA never sees it
before its end), so the result is never worse on validation than a plain `nas retrain`. Every
trial checkpoints to `DIR/tune/trial-<id>.pt` (and continues from it when the experiment is
restored after a kill); the best trial's best epoch becomes `DIR/model.pt` exactly as a plain
`nas retrain` would write it: only when it beats the inherited weights on validation top-1 (a tie
keeps the inherited file). On a cluster, `DIR` must be on storage every node sees.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from deploy.retrain import RetrainFolderResult, finish, prepare
from search_space.errors import InputError

__all__ = ["TUNED", "grace_period", "tune_retrain"]

TUNED = ("lr", "weight_decay", "distill_weight", "temperature")


def _param_space(config, distill: bool) -> dict[str, Any]:
    from ray import tune

    space = {"lr": tune.loguniform(config.lr / 10, config.lr * 10),
             "weight_decay": tune.loguniform(1e-4, 0.2)}
    if distill:
        space.update(distill_weight=tune.uniform(0.0, 1.0), temperature=tune.uniform(1.0, 8.0))
    return space


def grace_period(epochs: int) -> int:
    """Epochs every trial runs before ASHA may stop it: half the fine-tune.

    A higher learning rate first costs accuracy and overtakes only later in the cosine
    schedule: on the Fashion-MNIST benchmark, lr 1e-3 was 2 points behind lr 1e-4 after two
    epochs and 3 points ahead after ten. Stopping after one epoch (ASHA's usual grace) threw
    such trials away before they could show it.
    """
    return max(1, epochs // 2)


def _trial(params: dict[str, Any], *, student, teacher, splits, base: dict[str, Any], out: str,
           source: str) -> None:
    """One Tune trial: a fine-tune with `params`, reporting validation top-1 per epoch."""
    import torch
    from ray import tune

    from supernet.finetune import RetrainConfig, retrain_subnet

    torch.set_num_threads(1)
    config = RetrainConfig(**{**base, **params})
    path = Path(out) / f"trial-{tune.get_context().get_trial_id()}.pt"

    # The defaults' trial reports once, at its end, with its best epoch: ASHA then never stops
    # it, and the tuned result is never worse on validation than a plain `nas retrain`.
    reference = all(base.get(k) == v for k, v in params.items())
    seen: list[float] = []

    def report(record: dict[str, Any]) -> None:
        seen.append(record["val_top1"])
        if reference and record["epoch"] < config.epochs:
            return
        tune.report({"val_top1": max(seen) if reference else record["val_top1"], "loss": record["loss"],
                     "epoch": record["epoch"]})

    if path.exists():
        # a restored experiment runs again the trials that were running at the kill: Tune hears
        # their finished epochs once more (a trial already complete would otherwise end
        # reporting nothing), then the fine-tune continues from its checkpoint
        from supernet.checkpoint import CheckpointError, read_weights_only

        for record in read_weights_only(path, CheckpointError, "trial checkpoint").get("history", []):
            report(record)
    retrain_subnet(student, splits, config, path, teacher=teacher, source=source, resume=True,
                   on_epoch=report)


def tune_retrain(
    folder: str | Path,
    config,
    *,
    trials: int,
    workers: int | None = None,
    address: str | None = None,
    supernet: str | Path | None = None,
    data_dir: str | Path | None = None,
    resume: bool = False,
    on_start: Callable[[str], None] | None = None,
    on_note: Callable[[str], None] | None = None,
) -> RetrainFolderResult:
    """Run `trials` fine-tunes of `folder` on Ray Tune and keep the best one's weights.

    Args:
        config: the `RetrainConfig` whose epochs, batch size, schedule and distillation switch
            every trial shares; its lr, weight decay, distillation weight and temperature are
            the first trial's and the centre of the searched ranges.
        workers: trials at once on a local Ray (default: one per CPU); `address`: a running cluster.
        resume: restore the experiment in `DIR/tune` after a kill (finished trials are kept).
        on_start: told what is tuned on what; `on_note`: then of a validation split too small for a
            fine top-1 (`supernet.accuracy.coarse_split_note`).

    Raises:
        KeyboardInterrupt: Ctrl-C stopped the experiment (its state is saved: `resume` continues it).
    """
    import ray
    from ray import tune

    from search.result_files import file_sha256

    p = prepare(folder, distill=config.distill, supernet=supernet, data_dir=data_dir)
    storage = _storage(p.folder, resume)
    started = not ray.is_initialized()
    if started:
        ray.init(address=address, num_cpus=None if address else workers, include_dashboard=False,
                 log_to_driver=False)
    if on_start is not None:
        where = f"cluster {address}" if address else "local Ray"
        on_start(f"{p.describe()}; {trials} trials on Ray Tune ({where})")
    for note in p.notes() if on_note is not None else []:
        on_note(note)
    trainable = tune.with_resources(tune.with_parameters(
        _trial, student=p.sub, teacher=p.teacher, splits=p.splits, base=config.to_dict(),
        out=str(storage), source=file_sha256(p.source)), {"cpu": 1})
    try:
        results = _tuner(trainable, config, storage, trials=trials, workers=workers, resume=resume).fit()
    finally:
        if started:
            ray.shutdown()
    if results.num_terminated + results.num_errors < trials:  # Tune caught a Ctrl-C and saved its state
        raise KeyboardInterrupt
    return _keep_best(p, config, results, storage)


def _storage(folder: Path, resume: bool) -> Path:
    """DIR/tune: kept to resume its experiment, else emptied (the last experiment's trials are not ours)."""
    from ray import tune

    storage = (folder / "tune").resolve()
    if resume and not tune.Tuner.can_restore(str(storage / "experiment")):
        raise InputError(f"{storage}: no Tune experiment to resume: start without --resume")
    if not resume and storage.exists():
        shutil.rmtree(storage)
    return storage


def _tuner(trainable, config, storage: Path, *, trials: int, workers: int | None, resume: bool):
    """The experiment restored from `storage`, or a new one: Optuna's TPE from the defaults, ASHA stopping."""
    from optuna.samplers import TPESampler
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    if resume:
        return tune.Tuner.restore(str(storage / "experiment"), trainable=trainable, resume_errored=True)
    defaults = {k: getattr(config, k) for k in _param_space(config, config.distill)}
    searcher = OptunaSearch(points_to_evaluate=[defaults], sampler=TPESampler(seed=config.seed))
    scheduler = ASHAScheduler(time_attr="epoch", max_t=config.epochs,
                              grace_period=grace_period(config.epochs), reduction_factor=2)
    return tune.Tuner(trainable, param_space=_param_space(config, config.distill),
                      tune_config=tune.TuneConfig(metric="val_top1", mode="max", num_samples=trials,
                                                  search_alg=searcher, scheduler=scheduler,
                                                  max_concurrent_trials=workers),
                      run_config=tune.RunConfig(name="experiment", storage_path=str(storage), verbose=0))


def _keep_best(p, config, results, storage: Path) -> RetrainFolderResult:
    """The best trial's best epoch as DIR/model.pt (if it beats the inherited weights: `finish`), and every
    trial in the report."""
    from supernet import SubViT
    from supernet.checkpoint import CheckpointError, read_weights_only

    best = results.get_best_result(metric="val_top1", mode="max", scope="all")
    if best is None or best.metrics is None:
        raise InputError(f"{storage}: no trial reported a result (see the Ray logs)")
    path = storage / f"trial-{best.metrics['trial_id']}.pt"
    state = read_weights_only(path, CheckpointError, "trial checkpoint")
    model = SubViT.from_config(p.sub.config())
    model.load_state_dict(state["best"]["state_dict"])
    model.eval()
    trials = []
    for result in results:
        if result.metrics is None:
            continue
        params = {k: v for k, v in result.config.items() if k in TUNED}
        frame = result.metrics_dataframe
        top = float(frame["val_top1"].max()) if frame is not None and "val_top1" in frame else None
        trials.append({"trial": result.metrics["trial_id"], "settings": params, "best_val_top1": top,
                       "epochs": int(result.metrics.get("epoch", 0))})
    settings = config.replace(**{k: v for k, v in best.config.items() if k in TUNED})
    summary = {"settings": settings.to_dict(), "best_epoch": int(state["best"]["epoch"]),
               "epochs": list(state["history"]),
               "tune": {"trials": trials, "best_trial": best.metrics["trial_id"]}}
    return finish(p, model, summary, checkpoint=path)
