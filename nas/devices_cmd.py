"""`nas devices`: every target device, where its latencies come from, and its predictor's accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import click

from nas.latency_cmd import _EXISTING, _pct, _space

__all__ = ["devices"]


def _device_summary(dev, space) -> dict:
    """What `nas devices` says of a device (of the cpu device's predictors: fitted on this machine?)."""
    from latency_agent.fingerprint import same_machine
    from latency_models.identity import cpu_fingerprint
    from latency_models.store import stored_predictors

    summary = {"name": dev.name, "source": dev.source, "description": dev.profile.description,
               "precisions": {str(b): t for b, t in sorted(dev.profile.precisions.items(), reverse=True)},
               "predictors": stored_predictors(dev.name)}
    if dev.remote:
        summary["agent"] = dev.agent.url
    for p in summary["predictors"]:
        p["this_machine"] = same_machine(p["machine"], cpu_fingerprint()) if dev.name == "cpu" else None
    if dev.source == "analytic":
        summary["calibration"] = dev.profile.params.get("calibration_error")
    if space is not None:
        try:
            summary["for_space"] = _for_space(dev.predictor(space), space)
        except Exception as exc:  # noqa: BLE001 - a listing shows why a device cannot predict
            summary["for_space"] = {"space": space.name, "predictor": None, "why": str(exc)}
    return summary


def _for_space(pred, space) -> dict:
    """A predictor's latency range for `space`: `fastest_ms` / `slowest_ms`, the fastest and slowest
    archs the search reaches (`search.budget.latency_range`, what a budget is checked against), and
    `smallest_ms` / `largest_ms`, the latencies of the smallest and largest archs (by size, which is
    not latency order)."""
    from search.budget import latency_range

    reach = latency_range(space, pred.predict_ms)
    return {"space": space.name, "predictor": pred.source, "fastest_ms": reach.fastest_ms,
            "slowest_ms": reach.slowest_ms, "largest_ms": float(pred.predict_ms([space.largest()])[0]),
            "smallest_ms": float(pred.predict_ms([space.smallest()])[0])}


def _machine_words(p: dict) -> str:
    from latency_agent.fingerprint import describe

    if not p["machine"]:
        return "records no machine"
    elsewhere = " (not this machine)" if p["this_machine"] is False else ""
    return f"fitted on {describe(p['machine'])}{elsewhere}"


def _say_device(r: dict) -> None:
    imported = sorted({p["space"] for p in r["predictors"] if p["source"] == "imported"})
    source = ("remote" if "agent" in r else r["source"]) + (f" + imported ({', '.join(imported)})"
                                                            if imported else "")
    click.echo(f"{r['name']:<12} {source:<10} {r['description']}")
    if "agent" in r:
        click.echo(f"{'':<12} latency agent: {r['agent']}")
    click.echo(f"{'':<12} bits: " + ", ".join(f"{b} -> {t}" for b, t in r["precisions"].items()))
    cal = r.get("calibration")
    if cal:
        click.echo(f"{'':<12} calibration: {cal['rows']} published latencies, MAPE {_pct(cal['mape'])}, "
                   f"Kendall tau {cal['kendall_tau']:.2f}")
    for p in r["predictors"]:
        m = p.get("metrics") or {}
        acc = f"within 10% {_pct(m.get('within_10pct'))}, tau {m.get('kendall_tau', float('nan')):.2f}" \
            if m else "no metrics"
        click.echo(f"{'':<12} {p['source']} predictor for {p['space']}: {p['training_n']} archs, {acc}; "
                   f"{_machine_words(p)}")
    if not r["predictors"] and r["source"] == "measured":
        click.echo(f"{'':<12} no predictor yet: nas latency profile + nas latency fit")
    if "for_space" in r:
        f = r["for_space"]
        if f["predictor"]:
            click.echo(f"{'':<12} {f['space']}: {f['predictor']} predictor, {f['fastest_ms']:.3f} ms "
                       f"(fastest) .. {f['slowest_ms']:.3f} ms (slowest arch found)")
        else:
            click.echo(f"{'':<12} {f['space']}: no predictor")


@click.command()
@click.option("--space", "space_ref", help="Also show each device's predictor for SPACE and the latency "
              "range a search reaches: the fastest and the slowest arch found.")
@click.option("--device-file", type=_EXISTING, help="Also list the device a YAML file describes.")
@click.option("--json", "as_json", is_flag=True, help="Print as JSON (with --space: fastest_ms / slowest_ms, "
              "the range a search reaches; smallest_ms / largest_ms, the smallest and largest archs' "
              "latencies).")
def devices(space_ref: str | None, device_file: Path | None, as_json: bool) -> None:
    """List the target devices: source (measured / remote / imported / analytic), bit-widths, predictor
    accuracy, and the machine each predictor was fitted on.

    \b
    Devices of your own are described in $NAS_HOME/devices/NAME.yaml
    ($NAS_HOME is ~/.cache/vit-nas unless set).

    \b
    Examples:
      nas devices
      nas devices --space digits --json
    """
    from latency_models import devices as all_devices
    from latency_models.devices import device_from_file

    space = _space(space_ref) if space_ref else None
    listed = all_devices() + ([device_from_file(device_file)] if device_file else [])
    rows = [_device_summary(d, space) for d in listed]
    if as_json:
        click.echo(json.dumps(rows, indent=2))
        return
    for r in rows:
        _say_device(r)
