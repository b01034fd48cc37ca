"""`nas`: hardware-aware neural architecture search for vision transformers."""

from __future__ import annotations

import click

from nas._app import NasGroup
from nas._help import unify_defaults
from nas.devices_cmd import devices
from nas.eval_cmd import evaluate
from nas.extract_cmd import extract
from nas.latency_cmd import latency
from nas.retrain_cmd import retrain
from nas.search_cmd import search
from nas.space_cmd import space
from nas.train_cmd import train

__all__ = ["main"]


@click.group(cls=NasGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="vit-nas", prog_name="nas")
def main() -> None:
    """Hardware-aware NAS for vision transformers.

    Search spaces are YAML files or built-in names (digits, fashion-mnist, cifar10,
    imagenet-mobile). Bad input exits with status 2 and one line on stderr.

    \b
    What each command writes, and where (runs/ is in the current folder):
      train            --out/supernet.pt, metrics.json (train_state.pt until
                         the run ends); default --out:
                         runs/train/<space>-<dataset>-<time>/, or with neither
                         --space nor --dataset $NAS_HOME/supernets/digits-<hash>/
      search           --out/best.yaml, history.csv, pareto.csv, pareto.png,
                         search.json, study.journal; default --out:
                         runs/search/<device>-<budget>-<time>/
      extract          --out/model.pt, arch.yaml, model.float.onnx, model.onnx,
                         report.json; default --out: subnet/ beside BEST_YAML
      latency profile  rows appended to the CSV --out
      latency fit and  the predictor file --out; default:
      latency import     $NAS_HOME/predictors/<device>/<space>-<hash>.json
      latency bundle   --out/ (a new folder): models/, manifest.json,
                         timings.csv, README.md
      space sample     the YAML file --out (else it prints)
      space show, devices, eval, latency eval: nothing (they print)

    \b
    $NAS_HOME (default: ~/.cache/vit-nas) caches the default supernet, the
    latency predictors, and the cpu timings a search takes when it has none.
    """


main.add_command(space)
main.add_command(latency)
main.add_command(devices)
main.add_command(train)
main.add_command(search)
main.add_command(extract)
main.add_command(evaluate)
main.add_command(retrain)
unify_defaults(main)
