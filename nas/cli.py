"""`nas`: hardware-aware neural architecture search for vision transformers."""

from __future__ import annotations

import click

from nas._app import NasGroup
from nas.eval_cmd import evaluate
from nas.extract_cmd import extract
from nas.latency_cmd import devices, latency
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
    """


main.add_command(space)
main.add_command(latency)
main.add_command(devices)
main.add_command(train)
main.add_command(search)
main.add_command(extract)
main.add_command(evaluate)
main.add_command(retrain)
