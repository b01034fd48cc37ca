"""`nas space show|sample`: inspect a search space and draw architectures from it."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nas._format import human

__all__ = ["space"]


@click.group()
def space() -> None:
    """Inspect search spaces: a YAML path, or digits, fashion-mnist, cifar10, imagenet-mobile."""


def _choices(values) -> str:
    return ", ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in values)


@space.command()
@click.argument("space_ref", metavar="SPACE")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--yaml", "as_yaml", is_flag=True,
              help="Print the space's own YAML, to copy and edit (e.g. its num_classes).")
def show(space_ref: str, as_json: bool, as_yaml: bool) -> None:
    """Every dimension of SPACE, its number of architectures, and its MACs and params range.

    \b
    Examples:
      nas space show digits
      nas space show imagenet-mobile --yaml > my-space.yaml   # then: nas train --space my-space.yaml
    """
    from search_space import load_space

    if as_json and as_yaml:
        raise click.UsageError("--json and --yaml: choose one")
    s = load_space(space_ref)
    if as_yaml:
        click.echo(f"# the {s.name} space of vit-nas; edit and pass the file: nas train --space FILE\n"
                   + s.to_yaml(), nl=False)
        return
    small, large = s.smallest(), s.largest()
    cs, cl = s.complexity(small), s.complexity(large)
    summary = {
        "space": s.to_dict(),
        "fingerprint": s.fingerprint,
        "architectures": s.size(),
        "macs": [cs["macs"], cl["macs"]],
        "params": [cs["params"], cl["params"]],
        "smallest": small.to_dict(),
        "largest": large.to_dict(),
        "supernet": _supernet_line(s),
    }
    if as_json:
        click.echo(json.dumps(summary, indent=2))
        return
    spec = s.input
    rows = [
        ("input", f"{spec.size}x{spec.size}x{spec.channels}, patch {spec.patch} -> "
                  f"{spec.num_patches} tokens + class token, {spec.num_classes} classes"),
        ("head_dim", str(s.head_dim)),
        ("embed_dim", _choices(s.embed_dim)),
        ("depth", _choices(s.depth)),
        ("heads", _choices(s.heads) + "   (per block)"),
        ("mlp_ratio", _choices(s.mlp_ratio) + "   (per block)"),
        ("attention", _choices(s.attention) + f"   (per block; local window {s.local_window} tokens)"),
        ("token_keep", _choices(s.token_keep) + "   (per block)"),
        ("bits", _choices(s.bits) + "   (per block)"),
        ("architectures", f"{s.size():,} distinct"),
        ("MACs", f"{human(cs['macs'])} (smallest) .. {human(cl['macs'])} (largest)"),
        ("params", f"{human(cs['params'])} (smallest) .. {human(cl['params'])} (largest)"),
        ("supernet", summary["supernet"]),
    ]
    click.echo(f"space {s.name}  [{s.fingerprint}]" + (f"  {s.description}" if s.description else ""))
    width = max(len(k) for k, _ in rows)
    for key, value in rows:
        click.echo(f"  {key:<{width}}  {value}")
    click.echo(f"  smallest  {small.describe()}")
    click.echo(f"  largest   {large.describe()}")


def _supernet_line(s) -> str:
    """Where `nas search --space S` with no --supernet gets its supernet: shipped, trained, or nowhere."""
    from search_space import load_space
    from supernet.default_supernet import DEFAULT_SPACE
    from supernet.shipped import zoo_supernet

    shipped = zoo_supernet(s)
    if shipped is not None:
        return (f"ships with vit-nas ({shipped.path.name}, {shipped.summary()}): "
                f"nas search --space {s.name} uses it")
    if s.fingerprint == load_space(DEFAULT_SPACE).fingerprint:
        return "the default: trained on first use into $NAS_HOME/supernets/ by nas search"
    return f"none ships: train one with nas train --space {s.name} and pass it to nas search --supernet"


@space.command()
@click.argument("space_ref", metavar="SPACE")
@click.option("-n", "count", type=click.IntRange(1, 100_000), default=5, show_default=True,
              help="How many architectures.")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed.")
@click.option("--strategy", type=click.Choice(["complexity", "uniform"]), default="complexity",
              show_default=True,
              help="complexity: MACs spread evenly over the space's range; uniform: each choice uniform.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the YAML to this file (atomically) instead of standard output.")
def sample(space_ref: str, count: int, seed: int, strategy: str, out: Path | None) -> None:
    """Draw N architectures of SPACE and print them as YAML (`archs:` list).

    \b
    Examples:
      nas space sample digits -n 5 --seed 0
      nas space sample cifar10 -n 100 --strategy uniform --out archs.yaml
    """
    import numpy as np

    from search_space import load_space
    from search_space.files import write_text_atomic
    from search_space.yamlio import dump_yaml

    s = load_space(space_ref)
    rng = np.random.default_rng(seed)
    draw = s.sample_by_macs if strategy == "complexity" else s.sample
    archs = [draw(rng) for _ in range(count)]
    text = dump_yaml({"space": space_ref, "seed": seed, "strategy": strategy,
                      "archs": [a.to_dict() for a in archs]})
    if out is None:
        click.echo(text, nl=False)
    else:
        write_text_atomic(out, text)
        click.echo(f"wrote {count} architectures to {out}")
