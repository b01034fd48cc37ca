"""`nas extract`: the subnet of a best.yaml as a standalone, exported model."""

from __future__ import annotations

from pathlib import Path

import click

from nas._format import onnx_checks

__all__ = ["extract"]


@click.command()
@click.argument("best_yaml", type=click.Path(dir_okay=False, path_type=Path), metavar="BEST_YAML")
@click.option("--supernet", type=click.Path(dir_okay=False, path_type=Path),
              help="The supernet checkpoint (default: the one best.yaml names; its sha256 must match).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (default: subnet/ beside BEST_YAML).")
@click.option("--format", "formats", default="onnx", show_default=True,
              help="Comma list of onnx, torchscript, coreml.")
@click.option("--measure", is_flag=True, help="Time model.onnx on this machine's CPU (ONNX Runtime), or, "
              "when best.yaml's device is remote, its graph on the device through the latency agent.")
def extract(best_yaml: Path, supernet: Path | None, out: Path | None, formats: str, measure: bool) -> None:
    """Cut the subnet of BEST_YAML out of its supernet, export it, and report its accuracy and latency.

    Writes model.pt, arch.yaml, model.float.onnx (float32), model.onnx (int8 / int4 kernels),
    model.torchscript.pt or model.mlpackage when --format asks for them, and report.json
    to --out.

    \b
    Examples:
      nas extract runs/search/iphone-2ms-<time>/best.yaml
      nas extract best.yaml --format onnx,coreml --measure --out my-model/
    """
    from deploy.folder import check_formats, extract_to_folder
    from search_space.files import path_exists

    chosen = check_formats(formats.split(","))
    if not path_exists(best_yaml) or not best_yaml.is_file():
        raise click.UsageError(f"{best_yaml}: no such file (the best.yaml written by `nas search`)")
    result = extract_to_folder(best_yaml, supernet=supernet, out=out, formats=chosen, measure=measure,
                               on_note=lambda text: click.echo(text, err=True))
    r = result.report
    click.echo(f"{r['params'] / 1e3:.1f} k params, {r['macs'] / 1e6:.2f} M MACs; top-1 validation "
               f"{r['val_top1']:.3f}, test {r['test_top1']:.3f}")
    for device, ms in r.get("predicted_latency_ms", {}).items():
        click.echo(f"predicted latency on {device}: {ms:.4g} ms")
    if "measured_latency_ms" in r:
        m = r["measured_latency_ms"]
        name = m.get("device", "cpu")
        where = "this CPU (ONNX Runtime, 1 thread)" if name == "cpu" else f"{name} ({m['where']})"
        click.echo(f"measured on {where}: median {m[name]:.4g} ms, fastest {m[f'{name}_min']:.4g} ms")
    for line in onnx_checks(r):
        click.echo(line)
    click.echo(f"wrote {', '.join(p.name for p in result.files.values())} to {result.out}")
