"""The README's results table is exactly what bench/report.py builds from bench/results."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_results_match_the_benchmark_files():
    out = subprocess.run([sys.executable, str(ROOT / "bench" / "report.py")], capture_output=True,
                         text=True, check=True).stdout.strip()
    assert out in (ROOT / "README.md").read_text(), "run: python bench/report.py --write"
