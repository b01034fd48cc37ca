"""Rebuild the README's results section from bench/results/*.json.

    python bench/report.py            # print the section
    python bench/report.py --write    # replace it in README.md
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
START, END = "<!-- results:start -->", "<!-- results:end -->"


def section() -> str:
    rows = ["| benchmark | figure | value | machine | date | command |",
            "| --- | --- | --- | --- | --- | --- |"]
    for path in sorted((ROOT / "bench" / "results").glob("*.json")):
        result = json.loads(path.read_text())
        machine = result["machine"]
        where = f"{machine['cpu']}, {machine['cores']} cores, torch {machine['torch']}"
        for figure, value in result.get("headline", {}).items():
            rows.append(f"| {result['name']} | {figure} | {value} | {where} | {result['date'][:10]} | "
                        f"`{result['command']}` |")
    return "\n".join([START, *rows, END])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", action="store_true", help="update README.md in place")
    args = parser.parse_args()
    text = section()
    if not args.write:
        print(text)
        return
    readme = ROOT / "README.md"
    content = readme.read_text()
    before, rest = content.split(START, 1)
    after = rest.split(END, 1)[1]
    readme.write_text(before + text + after)
    print(f"updated {readme}")


if __name__ == "__main__":
    main()
