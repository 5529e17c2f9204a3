"""bench/api_load.py still runs end to end: a short run with 3 clients on SQLite.

The benchmark is not a test of speed (nothing here checks a latency against a goal);
this only keeps it from rotting: it must build its world, start the real server, deploy
while clients read, and print its figures.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench" / "api_load.py"


@pytest.mark.slow
def test_api_load_benchmark_runs_and_prints_p99(tmp_path: Path) -> None:
    figures = tmp_path / "figures.json"
    done = subprocess.run(
        [sys.executable, str(BENCH), "--seconds", "2", "--warmup", "0.5", "--clients", "3",
         "--orders", "20", "--stores", "sqlite", "--json", str(figures)],
        cwd=BENCH.parents[1], capture_output=True, text=True, timeout=300,
        stdin=subprocess.DEVNULL)

    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"^SQLite +all +\d+ ", done.stdout, re.MULTILINE), done.stdout
    assert re.search(r"goal p99 < 100 ms, SQLite: p99 \d+\.\d ms: (met|MISSED)", done.stdout)
    (result,) = json.loads(figures.read_text(encoding="utf-8"))
    assert result["all"]["requests"] > 0
    assert result["all"]["errors"] == 0
    assert {name: figures["requests"] > 0 for name, figures in result["by_endpoint"].items()} \
        == {"list": True, "detail": True}
    # the deployment wrote its build log while the clients read, and the events client got it
    assert result["log_lines_in_window"] > 0
    assert result["events"]["status"] == 200 and result["events"]["events"] > 0
    assert result["deployment_status_after"] == "succeeded"
