"""Isolated vs in-process wall time of the default conformance run, as interleaved pairs.

    PYTHONPATH=. python benchmarks/isolation.py              # 3 pairs serial, 3 pairs -n 2
    PYTHONPATH=. python benchmarks/isolation.py --pairs 5 --modes serial

Each pair runs ``python -m pytest -q --no-isolate`` and ``python -m pytest -q --isolate`` at the
repository root one right after the other (which one goes first alternates), so both sides of a
ratio see about the same load on a shared machine; the figure to read is the median of the
pairs' ratios. Every run also counts the OpenVINO worker processes it started (per pytest
process: the xdist workers each have their own pool) through the small plugin below, loaded
with ``-p``. Target (docs/performance.md): isolated wall <= 1.3x in-process.
Writes benchmarks/results/isolation.json (gitignored).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = 1.3

# Loaded into every pytest process of a run (``-p _isolation_count``): how many OpenVINO workers it started.
COUNTER = '''
import json, os
from pathlib import Path
import pytest
from conformance import worker

@pytest.hookimpl(tryfirst=True)
def pytest_sessionfinish(session):
    name = os.environ.get("PYTEST_XDIST_WORKER", "main")
    Path(os.environ["ISOLATION_COUNT_DIR"], f"{name}-{os.getpid()}.json").write_text(
        json.dumps({"spawned": worker.pool().spawned}))
'''


def _run(isolate: bool, workers: int, scratch: Path) -> dict:
    counts = Path(tempfile.mkdtemp(dir=scratch))
    env = {**os.environ, "ISOLATION_COUNT_DIR": str(counts),
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), str(scratch), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    command = [sys.executable, "-m", "pytest", "-q", "-p", "_isolation_count",
               "--isolate" if isolate else "--no-isolate",
               f"--conformance-report={counts / 'report.json'}", f"--repro-dir={counts / 'repro'}"]
    if workers:
        command += ["-n", str(workers)]
    load = os.getloadavg()[0]
    started = time.perf_counter()
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - started
    spawned = sum(json.loads(path.read_text())["spawned"] for path in counts.glob("*-*.json"))
    return {"isolate": isolate, "workers": workers, "wall_seconds": round(wall, 2), "spawned": spawned,
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2),
            "summary": result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-500:]}


def main(argv=None) -> int:
    """Run the pairs, print each and the medians; exit 1 if the median ratio misses the target."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--modes", nargs="+", choices=("serial", "n2"), default=["serial", "n2"])
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "isolation.json"))
    options = parser.parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="isolation-bench-"))
    (scratch / "_isolation_count.py").write_text(COUNTER)
    results, missed = {}, False
    for mode in options.modes:
        workers = 2 if mode == "n2" else 0
        pairs = []
        for number in range(options.pairs):
            order = (False, True) if number % 2 == 0 else (True, False)
            runs = {isolate: _run(isolate, workers, scratch) for isolate in order}
            pair = {"in_process": runs[False], "isolated": runs[True],
                    "ratio": round(runs[True]["wall_seconds"] / runs[False]["wall_seconds"], 3)}
            pairs.append(pair)
            print(f"{mode} pair {number + 1}: in-process {runs[False]['wall_seconds']:.1f} s, isolated "
                  f"{runs[True]['wall_seconds']:.1f} s ({runs[True]['spawned']} worker(s) started), ratio "
                  f"{pair['ratio']:.3f}x  [load {runs[order[0]]['load_before']}-{runs[order[1]]['load_after']}]",
                  flush=True)
        median = statistics.median(pair["ratio"] for pair in pairs)
        results[mode] = {"pairs": pairs, "median_ratio": median,
                         "median_in_process": statistics.median(p["in_process"]["wall_seconds"] for p in pairs),
                         "median_isolated": statistics.median(p["isolated"]["wall_seconds"] for p in pairs)}
        missed |= median > TARGET
        print(f"{mode}: median in-process {results[mode]['median_in_process']:.1f} s, isolated "
              f"{results[mode]['median_isolated']:.1f} s, median ratio {median:.3f}x (target <= {TARGET}x: "
              f"{'MET' if median <= TARGET else 'NOT MET'})", flush=True)
    Path(options.json).parent.mkdir(parents=True, exist_ok=True)
    Path(options.json).write_text(json.dumps(results, indent=2) + "\n")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
