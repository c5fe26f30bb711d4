"""Throughput figures of issue 14, each beside its yardstick as interleaved runs with medians.

    PYTHONPATH=. python benchmarks/throughput.py                  # suite, parallel, full_size, fuzz
    PYTHONPATH=. python benchmarks/throughput.py suite parallel   # a subset
    PYTHONPATH=. python benchmarks/throughput.py --rounds 5 --fuzz-cases 400
    PYTHONPATH=. python benchmarks/throughput.py parallel --gate 0.3  # each run waits for an idle machine

Every figure is a whole process (or two side by side) started from here, timed from start to
exit; peak RSS and CPU seconds are the child's own (``os.wait4``). The commands of one
benchmark run in turn, A B A B ..., ``--rounds`` times after ``--warmup`` uncounted rounds, and
each ratio is taken within a round; the figure is the median of the rounds' ratios (this
machine is shared: single rounds are noise). Printed as ``name: measured (target) MET/NOT MET
[figures]`` and written to benchmarks/results/throughput.json (gitignored).

* suite: the default suite in-process (``pytest --no-isolate``) restricted to exactly the
  items of the naive loop's cases (static, f32, not slow, not registered to crash: the ids
  come from ``naive_loop.py --list``) vs the naive per-case loop (benchmarks/naive_loop.py):
  target <= 0.75x; the isolated default run (``--isolate``) of the same items beside it.
* parallel: ``pytest -n 2`` over those items vs two independent serial runs side by side,
  each over half of the items (what two cores give two jobs that share nothing): target
  >= 0.95x of that throughput. A single serial run is measured in the same rounds, so the
  machine's limit (side by side / serial) is printed too, and ``-n 2`` with xdist's own
  ``load`` scheduling (``--xdist-split xdist``) beside it.
* full_size: the spec's 3D GroupConvolution example in-process (benchmarks/run.py's
  children): peak RSS of the harness <= 1.3x OpenVINO alone, wall <= 1.2x (OpenVINO alone
  + oracle alone); input generation is excluded from every side.
* fuzz: ``ov-conformance fuzz --max-cases N --jobs 2`` and ``--jobs auto`` (two jobs per core),
  interleaved: the rate each prints, median of the rounds (target >= 100 cases/s).
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import _Tracked  # noqa: E402  (Popen reaped with wait4: peak RSS, CPU seconds)

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ("suite", "parallel", "full_size", "fuzz")


def _environment() -> dict:
    """This checkout first on the path; Python's default bytecode cache (see run.py)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def _start(command: list[str]) -> _Tracked:
    """Start ``command``; its output goes to a file (two side by side must not block on a full pipe)."""
    output = tempfile.TemporaryFile()
    process = _Tracked(command, stdout=output, stderr=subprocess.STDOUT, env=_environment(), cwd=ROOT)
    process.output_file = output
    return process


def _output(process: _Tracked) -> str:
    """Wait for ``process``; what it printed."""
    process.wait()
    with process.output_file as output:
        output.seek(0)
        return output.read().decode(errors="replace")


def _finish(process: _Tracked, command: list[str]) -> dict:
    output = _output(process)
    if process.returncode not in (0, 1):   # pytest: 1 = some item failed (the run still counts)
        raise SystemExit(f"{' '.join(command)} exited {process.returncode}:\n{output[-3000:]}")
    return {"cpu_seconds": round(process.cpu_seconds, 3), "peak_rss_bytes": process.peak_rss_bytes,
            "returncode": process.returncode, "tail": output.strip().splitlines()[-1] if output.strip() else ""}


def _timed(*commands: list[str]) -> dict:
    """Start ``commands`` at once (side by side), wait for all: wall until the last exits."""
    load = os.getloadavg()[0]
    started = time.perf_counter()
    processes = [_start(command) for command in commands]
    runs = [_finish(process, command) for process, command in zip(processes, commands)]
    wall = time.perf_counter() - started
    return {"wall_seconds": round(wall, 3), "cpu_seconds": round(sum(run["cpu_seconds"] for run in runs), 3),
            "peak_rss_bytes": max(run["peak_rss_bytes"] for run in runs), "runs": runs,
            "load_before": round(load, 2), "load_after": round(os.getloadavg()[0], 2)}


WARMUP_ROUNDS = 1   # uncounted rounds before the counted ones (--warmup)
GATE_CORES: float | None = None   # --gate: wait before each round until the machine is this idle
GATE_MAX_WAIT_SECONDS = 600


def _set_warmup(rounds: int) -> None:
    global WARMUP_ROUNDS
    WARMUP_ROUNDS = rounds


def _busy_cores(seconds: float = 2.0) -> float:
    """Cores in use by anything (from /proc/stat) over ``seconds``."""
    def sample():
        fields = [int(value) for value in open("/proc/stat").readline().split()[1:]]
        return sum(fields), fields[3] + fields[4]   # total, idle + iowait
    total, idle = sample()
    time.sleep(seconds)
    total_after, idle_after = sample()
    return (os.cpu_count() or 1) * (1 - (idle_after - idle) / max(1, total_after - total))


def _wait_for_quiet() -> float | None:
    """With ``--gate CORES``: wait until other work uses fewer than CORES cores (at most
    ``GATE_MAX_WAIT_SECONDS``); the busy cores last seen, or None without a gate. On a shared
    machine a round measured beside someone else's job is noise."""
    if GATE_CORES is None:
        return None
    deadline = time.monotonic() + GATE_MAX_WAIT_SECONDS
    busy = _busy_cores()
    while busy >= GATE_CORES and time.monotonic() < deadline:
        busy = _busy_cores()
    return round(busy, 2)


def _rounds(sides: dict, rounds: int, label: str) -> list[dict]:
    """``sides``: name -> function returning a measurement; run them in turn, ``WARMUP_ROUNDS``
    uncounted rounds first."""
    measured = []
    for number in range(1 - WARMUP_ROUNDS, rounds + 1):
        row = {}
        for name, measure in sides.items():
            busy = _wait_for_quiet()
            row[name] = measure() | ({} if busy is None else {"busy_cores_before": busy})
        summary = ", ".join(f"{name} {value['wall_seconds']:.1f} s" for name, value in row.items())
        loads = [value["load_before"] for value in row.values()]
        gate = "" if GATE_CORES is None else \
            f"; busy cores before {max(value['busy_cores_before'] for value in row.values()):.2f} at most"
        print(f"  {label} {'warm-up' if number <= 0 else f'round {number}'}: {summary}  "
              f"[load {min(loads):.1f}-{max(loads):.1f}{gate}]", flush=True)
        if number > 0:
            measured.append(row)
    return measured


def _median(rows: list[dict], function) -> float:
    return statistics.median(function(row) for row in rows)


def _verdict(name: str, measured: float, target: float, detail: str, lower_is_better: bool = True) -> dict:
    met = measured <= target if lower_is_better else measured >= target
    sign = "<=" if lower_is_better else ">="
    print(f"{name}: {measured:.3f}x (target {sign} {target}x) {'MET' if met else 'NOT MET'}  [{detail}]", flush=True)
    return {"ratio": round(measured, 4), "target": target, "direction": sign, "met": met, "detail": detail}


def _spread(rows: list[dict], function) -> str:
    values = [function(row) for row in rows]
    return f"{min(values):.2f}-{max(values):.2f}"


# --- the suite vs the naive loop, and -n 2 ---------------------------------------------------

def _item_ids(work: Path) -> Path:
    """The naive loop's cases as pytest item ids, in a file pytest reads with ``@FILE``."""
    listing = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "naive_loop.py"), "--list"],
                             capture_output=True, text=True, env=_environment(), cwd=ROOT, check=True)
    path = work / "items.txt"
    path.write_text(listing.stdout)
    return path


def _pytest(work: Path, items: Path, *options: str) -> list[str]:
    """A conformance run of exactly ``items``, report and IR in a fresh directory of ``work``."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    return [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
            f"--conformance-report={run_dir / 'report.json'}", f"--ir-dir={run_dir / 'ir'}",
            f"--repro-dir={run_dir / 'repro'}", *options, f"@{items}"]


def suite(work: Path, rounds: int) -> dict:
    items = _item_ids(work)
    count = len(items.read_text().split())
    print(f"suite: {count} items (static f32, not slow) vs the naive loop over the same cases", flush=True)
    naive = [sys.executable, str(ROOT / "benchmarks" / "naive_loop.py")]
    rows = _rounds({"naive": lambda: _timed(naive),
                    "in_process": lambda: _timed(_pytest(work, items, "--no-isolate")),
                    "isolated": lambda: _timed(_pytest(work, items, "--isolate"))}, rounds, "suite")
    medians = {side: _median(rows, lambda row, side=side: row[side]["wall_seconds"]) for side in rows[0]}
    in_process = _verdict("suite in-process / naive loop", _median(rows, lambda r: r["in_process"]["wall_seconds"]
                                                                     / r["naive"]["wall_seconds"]), 0.75,
                          f"{medians['in_process']:.1f} s vs {medians['naive']:.1f} s, {count} items, rounds "
                          f"{_spread(rows, lambda r: r['in_process']['wall_seconds'] / r['naive']['wall_seconds'])}")
    isolated = _median(rows, lambda r: r["isolated"]["wall_seconds"] / r["naive"]["wall_seconds"])
    print(f"  beside it: suite isolated (default) / naive loop: {isolated:.3f}x [{medians['isolated']:.1f} s]; "
          f"CPU seconds naive {_median(rows, lambda r: r['naive']['cpu_seconds']):.1f}, in-process "
          f"{_median(rows, lambda r: r['in_process']['cpu_seconds']):.1f}, isolated "
          f"{_median(rows, lambda r: r['isolated']['cpu_seconds']):.1f}", flush=True)
    return {"items": count, "rounds": rows, "median_wall_seconds": medians, "in_process_vs_naive": in_process,
            "isolated_vs_naive": round(isolated, 4)}


def parallel(work: Path, rounds: int) -> dict:
    items = _item_ids(work)
    ids = items.read_text().split()
    halves = [work / "half-0.txt", work / "half-1.txt"]
    for index, half in enumerate(halves):
        half.write_text("\n".join(ids[index::2]) + "\n")
    print(f"parallel: -n 2 over {len(ids)} items vs two serial runs side by side ({len(ids[0::2])} + "
          f"{len(ids[1::2])} items)", flush=True)
    rows = _rounds({"n2": lambda: _timed(_pytest(work, items, "-n", "2")),
                    "side_by_side": lambda: _timed(*(_pytest(work, half) for half in halves)),
                    "serial": lambda: _timed(_pytest(work, items)),
                    "n2_xdist_load": lambda: _timed(_pytest(work, items, "-n", "2", "--xdist-split", "xdist"))},
                   rounds, "parallel")
    medians = {side: _median(rows, lambda row, side=side: row[side]["wall_seconds"]) for side in rows[0]}
    # Throughput = items / wall; both sides run the same items, so the ratio is side_by_side / n2.
    ratio = _verdict("-n 2 throughput / two serial runs side by side",
                     _median(rows, lambda r: r["side_by_side"]["wall_seconds"] / r["n2"]["wall_seconds"]), 0.95,
                     f"{medians['n2']:.1f} s vs {medians['side_by_side']:.1f} s, rounds "
                     f"{_spread(rows, lambda r: r['side_by_side']['wall_seconds'] / r['n2']['wall_seconds'])}",
                     lower_is_better=False)
    limit = _median(rows, lambda r: r["serial"]["wall_seconds"] / r["side_by_side"]["wall_seconds"])
    speedup = _median(rows, lambda r: r["serial"]["wall_seconds"] / r["n2"]["wall_seconds"])
    print(f"  the machine's limit: serial / side by side = {limit:.3f}x; serial / -n 2 = {speedup:.3f}x "
          f"[serial {medians['serial']:.1f} s]; CPU seconds -n 2 {_median(rows, lambda r: r['n2']['cpu_seconds']):.1f}, "
          f"side by side {_median(rows, lambda r: r['side_by_side']['cpu_seconds']):.1f}, serial "
          f"{_median(rows, lambda r: r['serial']['cpu_seconds']):.1f}", flush=True)
    with_load = _median(rows, lambda r: r["side_by_side"]["wall_seconds"] / r["n2_xdist_load"]["wall_seconds"])
    print(f"  beside it: -n 2 with xdist's own load scheduling (--xdist-split xdist) / side by side = "
          f"{with_load:.3f}x [{medians['n2_xdist_load']:.1f} s]", flush=True)
    return {"items": len(ids), "rounds": rows, "median_wall_seconds": medians, "n2_vs_side_by_side": ratio,
            "machine_limit_speedup": round(limit, 4), "n2_speedup": round(speedup, 4),
            "n2_xdist_load_vs_side_by_side": round(with_load, 4)}


# --- the full-size example ----------------------------------------------------------------

def _child(mode: str, ir_dir: Path) -> dict:
    command = [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--child", mode, "group_convolution_3d",
               "--ir-dir", str(ir_dir)]
    load = os.getloadavg()[0]
    process = _start(command)
    output = _output(process)
    if process.returncode != 0:
        raise SystemExit(f"full_size {mode} failed:\n{output[-3000:]}")
    figures = json.loads(output.strip().splitlines()[-1])
    return {**figures, "wall_seconds": figures["seconds"], "peak_rss_bytes": process.peak_rss_bytes,
            "cpu_seconds": round(process.cpu_seconds, 3), "load_before": round(load, 2)}


def full_size(work: Path, rounds: int) -> dict:
    print("full_size: the spec's 3D GroupConvolution example, in-process", flush=True)
    ir_dir = work / "ir-full-size"
    rows = _rounds({mode: (lambda mode=mode: _child(mode, ir_dir)) for mode in ("openvino", "oracle", "harness")},
                   rounds, "full_size")
    rss = _verdict("full-size peak RSS harness / OpenVINO alone",
                   _median(rows, lambda r: r["harness"]["peak_rss_bytes"] / r["openvino"]["peak_rss_bytes"]), 1.3,
                   f"{_median(rows, lambda r: r['harness']['peak_rss_bytes']) / 1e9:.2f} GB vs "
                   f"{_median(rows, lambda r: r['openvino']['peak_rss_bytes']) / 1e9:.2f} GB; oracle alone "
                   f"{_median(rows, lambda r: r['oracle']['peak_rss_bytes']) / 1e9:.2f} GB")
    both = lambda r: r["openvino"]["seconds"] + r["oracle"]["seconds"]  # noqa: E731
    wall = _verdict("full-size wall harness / (OpenVINO alone + oracle alone)",
                    _median(rows, lambda r: r["harness"]["seconds"] / both(r)), 1.2,
                    f"{_median(rows, lambda r: r['harness']['seconds']):.1f} s vs "
                    f"{_median(rows, lambda r: r['openvino']['seconds']):.1f} + "
                    f"{_median(rows, lambda r: r['oracle']['seconds']):.1f} s, rounds "
                    f"{_spread(rows, lambda r: r['harness']['seconds'] / both(r))}")
    return {"rounds": rows, "rss": rss, "wall": wall}


# --- fuzzing -----------------------------------------------------------------------------------

_RATE = re.compile(r"(\d+) cases in ([\d.]+) s: ([\d.]+) cases/s")


def fuzz(work: Path, rounds: int, cases: int) -> dict:
    print(f"fuzz: ov-conformance fuzz --max-cases {cases} --jobs 2, and --jobs auto (two per core) beside it "
          f"(the rate each prints)", flush=True)

    def campaign(jobs: str) -> dict:
        out = Path(tempfile.mkdtemp(dir=work))
        measured = _timed([sys.executable, "-m", "conformance.cli", "fuzz", "--max-cases", str(cases),
                           "--jobs", jobs, "--seed", "1", "--out", str(out / "findings")])
        match = _RATE.search(measured["runs"][0]["tail"])
        if not match:
            raise SystemExit(f"fuzz printed no rate: {measured['runs'][0]['tail']!r}")
        # CPU of the whole tree (wait4: the CLI, its jobs and their OpenVINO workers): with 2 jobs on 2
        # cores the rate is bounded by cases / (CPU / 2), so CPU per case is the figure to cut.
        run = measured["runs"][0]
        return {**measured, "cases": int(match.group(1)), "rate": float(match.group(3)),
                "cpu_ms_per_case": 1000 * run["cpu_seconds"] / int(match.group(1))}

    rows = _rounds({"jobs_2": lambda: campaign("2"), "jobs_auto": lambda: campaign("auto")}, rounds, "fuzz")
    figures = {}
    for side, label in (("jobs_2", "--jobs 2"), ("jobs_auto", "--jobs auto")):
        rate = _median(rows, lambda r: r[side]["rate"])
        cpu = _median(rows, lambda r: r[side]["cpu_ms_per_case"])
        met = rate >= 100
        print(f"fuzzing rate, {label}: {rate:.2f} cases/s (target >= 100 cases/s) {'MET' if met else 'NOT MET'}  "
              f"[rounds {_spread(rows, lambda r: r[side]['rate'])} cases/s, {cases} cases; CPU {cpu:.1f} ms a case "
              f"over every process (rounds {_spread(rows, lambda r: r[side]['cpu_ms_per_case'])})]", flush=True)
        figures[side] = {"rate": rate, "cpu_ms_per_case": cpu, "met": met}
    ratio = _median(rows, lambda r: r["jobs_auto"]["wall_seconds"] / r["jobs_2"]["wall_seconds"])
    print(f"  wall --jobs auto / --jobs 2 in the same rounds: {ratio:.3f}x", flush=True)
    return {"rounds": rows, **figures, "auto_vs_2_wall": round(ratio, 4), "target": 100}


def main(argv=None) -> int:
    """Run the chosen benchmarks; write the JSON; exit 0 (figures, not a test)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("benchmarks", nargs="*", metavar="BENCHMARK", help=f"any of {', '.join(BENCHMARKS)} "
                        "(default: all)")
    parser.add_argument("--rounds", type=int, default=3, help="counted rounds per benchmark (default 3)")
    parser.add_argument("--warmup", type=int, default=WARMUP_ROUNDS, help="uncounted rounds first (default 1)")
    parser.add_argument("--fuzz-cases", type=int, default=200, help="--max-cases of each fuzz campaign")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "throughput.json"))
    parser.add_argument("--gate", type=float, metavar="CORES", default=None,
                        help="before each run, wait until the machine's other work uses fewer than CORES cores "
                             f"(checked over 2 s; at most {GATE_MAX_WAIT_SECONDS} s): for a shared machine")
    options = parser.parse_args(argv)
    _set_warmup(options.warmup)
    global GATE_CORES
    GATE_CORES = options.gate
    chosen = options.benchmarks or list(BENCHMARKS)
    if any(name not in BENCHMARKS for name in chosen):
        parser.error(f"benchmarks are {', '.join(BENCHMARKS)}")
    document = {"started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "rounds": options.rounds,
                "warmup_rounds": options.warmup,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "load_at_start": [round(x, 2) for x in os.getloadavg()]}, "results": {}}
    with tempfile.TemporaryDirectory(prefix="throughput-benchmark-") as scratch:
        work = Path(scratch)
        runners = {"suite": suite, "parallel": parallel, "full_size": full_size,
                   "fuzz": lambda work, rounds: fuzz(work, rounds, options.fuzz_cases)}
        for name in chosen:
            document["results"][name] = runners[name](work, options.rounds)
    output = Path(options.json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2, default=str) + "\n")
    print(f"written: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
