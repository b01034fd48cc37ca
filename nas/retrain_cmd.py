"""`nas retrain`: fine-tune an extracted subnet in its folder (distilled, quantization-aware)."""

from __future__ import annotations

from pathlib import Path

import click

from nas._format import onnx_checks
from nas._threads import threads_option, use_threads

__all__ = ["retrain"]


@click.command()
@click.argument("folder", type=click.Path(path_type=Path), metavar="DIR")
@click.option("--epochs", type=click.IntRange(1, None), help="Epochs of fine-tuning (default: 10).")
@click.option("--lr", type=click.FloatRange(0, None, min_open=True),
              help="Peak learning rate (default: 1e-3).")
@click.option("--distill/--no-distill", default=True, show_default=True,
              help="Distil from the supernet's largest subnet (needs the supernet).")
@click.option("--distill-weight", type=click.FloatRange(0, 1),
              help="Share of the distillation term in the loss (default: 0.5).")
@click.option("--temperature", type=click.FloatRange(0, None, min_open=True),
              help="Distillation temperature (default: 2).")
@click.option("--batch-size", type=click.IntRange(1, None), help="Batch size (default: 32).")
@click.option("--supernet", type=click.Path(dir_okay=False, path_type=Path),
              help="The supernet checkpoint (default: the one model.pt records; its sha256 must match).")
@click.option("--data-dir", type=click.Path(path_type=Path),
              help="Another copy of the supernet's dataset (same format) to read.")
@click.option("--limit", type=click.IntRange(1, None), help="Fine-tune on the first N training images only.")
@click.option("--seed", type=click.IntRange(0, None), help="Random seed (default: 0).")
@click.option("--resume", is_flag=True, help="Continue from DIR/retrain.pt (same settings), or with "
              "--trials the Tune experiment in DIR/tune.")
@click.option("--trials", type=click.IntRange(1, None),
              help="Tune lr, weight decay, distillation weight and temperature over N short fine-tunes "
                   "(Ray Tune, Optuna TPE, ASHA) and keep the best.")
@click.option("--workers", type=click.IntRange(1, None), help="With --trials: trials at once on a local Ray.")
@click.option("--ray-address", help="With --trials: run the trials on this Ray cluster.")
@threads_option(" With --trials, each trial runs on one thread.")
def retrain(folder: Path, epochs, lr, distill, distill_weight, temperature, batch_size, supernet, data_dir,
            limit, seed, resume, trials, workers, ray_address, threads) -> None:
    """Fine-tune the subnet in DIR (written by `nas extract`) and update its model, exports and report.

    \b
    Examples:
      nas retrain runs/search/iphone-2ms-<time>/subnet
      nas retrain subnet/ --epochs 20 --no-distill
      nas retrain subnet/ --trials 8 --workers 2     # tune it on Ray Tune
    """
    from deploy.retrain import retrain_folder
    from nas._progress import progress
    from supernet.finetune import RetrainConfig

    config = RetrainConfig(distill=distill).replace(
        epochs=epochs, lr=lr, distill_weight=distill_weight, temperature=temperature,
        batch_size=batch_size, limit=limit, seed=seed)
    use_threads(threads)
    if (workers or ray_address) and not trials:
        raise click.UsageError("--workers and --ray-address need --trials")
    if workers and ray_address:
        raise click.UsageError("--workers and --ray-address exclude each other (a cluster has its own)")
    try:
        if trials:
            _tune(folder, config, trials, workers, ray_address, supernet, data_dir, resume)
            return
        with progress(config.epochs, "epochs", every_s=0.0) as step:
            result = retrain_folder(
                folder, config, supernet=supernet, data_dir=data_dir, resume=resume,
                on_start=_say, on_note=_say,
                on_epoch=lambda r: step(f"epoch {r['epoch']}: loss {r['loss']:.3f}, "
                                        f"val top-1 {r['val_top1']:.3f}", at=r["epoch"]))
    except KeyboardInterrupt:
        import shlex

        from nas._app import Interrupted, resume_command

        again = resume_command(click.get_current_context(), resume=True, distill=None)
        again += (" --no-distill" if not distill else "") + " " + shlex.quote(str(folder))
        where = folder / ("tune" if trials else "retrain.pt")
        raise Interrupted(f"the finished work is in {where}; continue with {again}") from None
    _print(result)


def _say(text: str) -> None:
    click.echo(text, err=True)


def _tune(folder, config, trials, workers, ray_address, supernet, data_dir, resume) -> None:
    from deploy.retrain_tune import TUNED, tune_retrain

    result = tune_retrain(folder, config, trials=trials, workers=workers, address=ray_address,
                          supernet=supernet, data_dir=data_dir, resume=resume,
                          on_start=_say, on_note=_say)
    _print(result)
    summary = result.report["retrain"]
    click.echo(f"best of {len(summary['tune']['trials'])} trials: "
               + ", ".join(f"{k} {summary['settings'][k]:.3g}" for k in TUNED if k in summary["settings"]))


def _print(result) -> None:
    r = result.report["retrain"]
    before, after = r["inherited"], r["retrained"]
    click.echo(f"top-1 validation {before['val_top1']:.3f} -> {after['val_top1']:.3f}, "
               f"test {before['test_top1']:.3f} -> {after['test_top1']:.3f} "
               f"(inherited -> retrained, best epoch {r['best_epoch']} of {len(r['epochs'])})")
    if r.get("kept") == "inherited":
        click.echo(f"kept the inherited weights: no epoch beat them on validation "
                   f"({after['val_top1']:.3f} vs {before['val_top1']:.3f})")
    for line in onnx_checks(result.report):
        click.echo(line)
    click.echo(f"wrote {', '.join(p.name for p in result.files.values())} to {result.folder}")
