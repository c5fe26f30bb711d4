"""Performance figures of the harness, each printed as a ratio against its target.

    PYTHONPATH=. python benchmarks/run.py                   # all three benchmarks
    PYTHONPATH=. python benchmarks/run.py overhead parallel # a subset: full_size, overhead, parallel

Writes benchmarks/results/benchmark.json (gitignored; ``--json PATH`` to change).
Every measurement runs in a fresh subprocess; peak RSS is that process's
``ru_maxrss`` (``os.wait4``), so nothing of one measurement leaks into another.
The machine's load average is recorded beside each figure: on a shared
machine, read the absolute times with it. Targets (docs/performance.md):

* full_size: the spec's 3D examples end to end (OpenVINO + oracle + comparison),
  beside OpenVINO alone and the oracle alone, same IR and inputs:
  BackpropData peak RSS <= 1.3x OpenVINO alone, wall <= 2.5x OpenVINO alone;
  GroupConvolution peak RSS <= 1.3x OpenVINO alone, wall <= 1.2x (OpenVINO alone + oracle alone).
* overhead: the default conformance run's wall time <= 1.15x the sum over its items
  of compile + infer + oracle seconds, as recorded in the same run's report.
* parallel: >= 500 items from a sweep file (temp dir): serial wall / ``-n 2`` wall >= 1.7.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# The spec's 3D examples (attributes from the upstream examples, see cases/spec_examples/).
FULL_SIZE = {
    "group_convolution_3d": textwrap.dedent("""
        op: GroupConvolution
        cases:
          - name: spec_example_3d
            data: [1, 12, 224, 224, 224]
            kernel: [4, 1, 3, 5, 5, 5]
            strides: [1, 1, 1]
            dilations: [1, 1, 1]
            pads_begin: [2, 2, 2]
            pads_end: [2, 2, 2]
            auto_pad: explicit
        """),
    "backprop_data_3d": textwrap.dedent("""
        op: GroupConvolutionBackpropData
        cases:
          - name: spec_example_3d
            data: [1, 20, 224, 224, 224]
            kernel: [4, 5, 2, 3, 3, 3]
            strides: [2, 2, 2]
            dilations: [1, 1, 1]
            pads_begin: [1, 1, 1]
            pads_end: [1, 1, 1]
            auto_pad: explicit
        """),
}

# --- child processes (one measurement each) -------------------------------------------


def _child(mode: str, case_text: str, ir_dir: str) -> dict:
    """Runs in a fresh process: ``openvino`` | ``oracle`` | ``harness`` on the case; returns timings."""
    from conformance import api, oracle
    from conformance.runtime import core

    case = api.load_cases_text(case_text, "<benchmark>", memory_budget=None)[0]
    started = time.perf_counter()
    inputs = api.make_inputs(case)
    figures = {"inputs_seconds": time.perf_counter() - started}
    target = api.Target("CPU", "f32")
    if mode == "openvino":
        # OpenVINO alone: what any runner of this IR must do (read, compile, infer), no oracle.
        ir = api.render(case, inputs, ir_dir)
        started = time.perf_counter()
        result = api.run(ir, inputs.data, target)
        figures |= {"seconds": time.perf_counter() - started, "compile_seconds": result.compile_seconds,
                    "infer_seconds": result.infer_seconds, "primitive_type": result.primitive_type}
    elif mode == "oracle":
        started = time.perf_counter()
        dtype = oracle.oracle_dtype(case, inputs)
        slabs = 0
        for _slab in oracle.reference_slabs(case, inputs, dtype=dtype):
            slabs += 1
        figures |= {"seconds": time.perf_counter() - started, "dtype": str(dtype), "slabs": slabs}
    else:
        core()  # OpenVINO's plugin loading is not part of either side's figure
        started = time.perf_counter()
        # The inputs made above (timed apart, as on the other sides): letting check make its own
        # would time their generation and hold both copies (+0.54 GB for GroupConvolution).
        outcome = api.check(case, target, ir_dir, inputs=inputs)
        figures |= {"seconds": time.perf_counter() - started, "compile_seconds": outcome.run.compile_seconds,
                    "infer_seconds": outcome.run.infer_seconds, "oracle_seconds": outcome.oracle_seconds,
                    "compare_seconds": outcome.compare_seconds, "streamed": outcome.streamed,
                    "passed": outcome.verdict.passed, "verdict": outcome.verdict.describe()}
    return figures


class _Tracked(subprocess.Popen):
    """Popen that reaps with wait4 to keep the child's own peak RSS and CPU seconds."""

    peak_rss_bytes: int | None = None
    cpu_seconds: float | None = None      # user + system of the child and the children it waited for

    def _try_wait(self, wait_flags):
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid == self.pid:
            self.peak_rss_bytes = usage.ru_maxrss * 1024
            self.cpu_seconds = usage.ru_utime + usage.ru_stime
        return pid, status


def _run(command: list[str], env: dict | None = None, cwd: Path | None = None) -> dict:
    load_before = os.getloadavg()
    environment = {**os.environ, **(env or {})}
    if BYTECODE_CACHE:
        environment.pop("PYTHONDONTWRITEBYTECODE", None)
    started = time.perf_counter()
    process = _Tracked(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                       env=environment, cwd=cwd)
    stdout, stderr = process.communicate()
    return {"wall_seconds": time.perf_counter() - started, "peak_rss_bytes": process.peak_rss_bytes,
            "returncode": process.returncode, "stdout": stdout, "stderr": stderr[-3000:],
            "load_before": [round(x, 2) for x in load_before],
            "load_after": [round(x, 2) for x in os.getloadavg()]}


def _python_env() -> dict:
    env = {"PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if not BYTECODE_CACHE:
        env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


# Python's default: modules (and pytest's assertion-rewritten plugins) are compiled once and
# cached in __pycache__. With PYTHONDONTWRITEBYTECODE=1 (set in some sandboxes) every run
# recompiles ~100 plugin modules (~3 s here); --no-bytecode-cache measures that setting.
BYTECODE_CACHE = True


def _ratio(name: str, measured: float, target: float, unit: str, detail: str, lower_is_better=True) -> dict:
    met = measured <= target if lower_is_better else measured >= target
    sign = "<=" if lower_is_better else ">="
    print(f"  {name}: {measured:.3f}x (target {sign} {target}x) {'MET' if met else 'NOT MET'}  [{detail}]")
    return {"ratio": round(measured, 4), "target": target, "met": met, "direction": sign, "detail": detail}


# --- full size -------------------------------------------------------------------------

def full_size(ir_dir: Path) -> dict:
    results = {}
    for name, text in FULL_SIZE.items():
        print(f"full_size {name}:", flush=True)
        runs = {}
        for mode in ("openvino", "oracle", "harness"):
            measured = _run([sys.executable, __file__, "--child", mode, name, "--ir-dir", str(ir_dir)],
                            env=_python_env())
            if measured["returncode"] != 0:
                raise SystemExit(f"{name}/{mode} failed:\n{measured['stderr']}")
            figures = json.loads(measured["stdout"].strip().splitlines()[-1])
            runs[mode] = {**figures, "process_wall_seconds": round(measured["wall_seconds"], 3),
                          "peak_rss_bytes": measured["peak_rss_bytes"],
                          "load_before": measured["load_before"], "load_after": measured["load_after"]}
            print(f"    {mode}: {figures['seconds']:.1f} s (inputs {figures['inputs_seconds']:.1f} s, "
                  f"process {measured['wall_seconds']:.1f} s), peak RSS {measured['peak_rss_bytes'] / 1e9:.2f} GB, "
                  f"load {measured['load_before'][0]:.1f}->{measured['load_after'][0]:.1f}", flush=True)
        ov, oracle_alone, harness = runs["openvino"], runs["oracle"], runs["harness"]
        memory = _ratio("peak RSS / OpenVINO alone", harness["peak_rss_bytes"] / ov["peak_rss_bytes"], 1.3, "x",
                        f"{harness['peak_rss_bytes'] / 1e9:.2f} GB vs {ov['peak_rss_bytes'] / 1e9:.2f} GB")
        if name == "backprop_data_3d":
            wall = _ratio("wall / OpenVINO alone", harness["seconds"] / ov["seconds"], 2.5, "x",
                          f"{harness['seconds']:.1f} s vs {ov['seconds']:.1f} s")
        else:
            both = ov["seconds"] + oracle_alone["seconds"]
            wall = _ratio("wall / (OpenVINO alone + oracle alone)", harness["seconds"] / both, 1.2, "x",
                          f"{harness['seconds']:.1f} s vs {ov['seconds']:.1f} + {oracle_alone['seconds']:.1f} s")
        print(f"    verdict: {harness['verdict'].splitlines()[0]}")
        results[name] = {"runs": runs, "memory": memory, "wall": wall}
    return results


# --- overhead --------------------------------------------------------------------------

def overhead(work: Path) -> dict:
    """The default conformance run (``python -m pytest`` at the repository root), report in ``work``."""
    print("overhead (default conformance run):", flush=True)
    report = work / "overhead.json"
    measured = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--conformance-report={report}",
                     f"--ir-dir={work / 'ir'}"], env=_python_env(), cwd=ROOT)
    if not report.exists():
        raise SystemExit(f"the conformance run wrote no report:\n{measured['stdout'][-3000:]}")
    items = json.loads(report.read_text())["items"]
    sums = {key: sum(item["run"].get(key, 0.0) for item in items)
            for key in ("read_seconds", "compile_seconds", "infer_seconds", "oracle_seconds", "compare_seconds")}
    # OpenVINO's compile of an IR on disk = read_model (IR frontend) + compile_model.
    work_seconds = sums["read_seconds"] + sums["compile_seconds"] + sums["infer_seconds"] + sums["oracle_seconds"]
    ran = sum(1 for item in items if item["run"])
    print(f"    {len(items)} items ({ran} ran), wall {measured['wall_seconds']:.1f} s, read {sums['read_seconds']:.1f} s, "
          f"compile {sums['compile_seconds']:.1f} s, "
          f"infer {sums['infer_seconds']:.1f} s, oracle {sums['oracle_seconds']:.1f} s, compare {sums['compare_seconds']:.1f} s, "
          f"load {measured['load_before'][0]:.1f}->{measured['load_after'][0]:.1f}")
    ratio = _ratio("wall / sum(read + compile + infer + oracle)", measured["wall_seconds"] / work_seconds, 1.15, "x",
                   f"{measured['wall_seconds']:.1f} s vs {work_seconds:.1f} s")
    # Where the rest goes: the fixed start is `pytest --collect-only` (interpreter, pytest and
    # its plugins, collection; it imports neither torch nor OpenVINO) plus importing torch and
    # OpenVINO, which a run that checks anything does once (timed in a process of its own).
    collect = _run([sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--collect-only"],
                   env=_python_env(), cwd=ROOT)["wall_seconds"]
    imports = _run([sys.executable, "-c", "import time; started = time.perf_counter(); import torch, openvino; "
                    "openvino.Core(); print(time.perf_counter() - started)"], env=_python_env(), cwd=ROOT)
    import_seconds = float(imports["stdout"].strip().splitlines()[-1])
    startup = collect + import_seconds
    per_item = (measured["wall_seconds"] - startup - work_seconds) / max(1, len(items))
    print(f"    of which start-up {startup:.1f} s (pytest --collect-only {collect:.1f} s + importing torch and "
          f"OpenVINO {import_seconds:.1f} s); the rest {1000 * per_item:.1f} ms per item beyond compile/infer/oracle "
          f"(wall without start-up / work = {(measured['wall_seconds'] - startup) / work_seconds:.3f}x)")
    return {"startup_seconds": round(startup, 3), "collect_only_seconds": round(collect, 3),
            "import_seconds": round(import_seconds, 3), "per_item_overhead_seconds": round(per_item, 5),
            "items": len(items), "ran": ran, "wall_seconds": round(measured["wall_seconds"], 3),
            **{key: round(value, 3) for key, value in sums.items()}, "overhead": ratio,
            "load_before": measured["load_before"], "load_after": measured["load_after"]}


# --- parallel --------------------------------------------------------------------------

# Two sweeps of 512 GroupConvolution 2D items each (4 data shapes x 4 kernels x 4 strides x
# 2 dilations x 4 auto_pads): "layers" has CNN-layer-sized tensors (32 channels, ~56x56,
# ~50-100 ms per item), "small" tiny ones (16 channels, ~40x40, ~20 ms per item, where
# xdist's fixed start-up cost dominates).
_SWEEP = textwrap.dedent("""
    # Generated by benchmarks/run.py for the parallel benchmark (not a default case file).
    op: GroupConvolution
    defaults: {{dilations: [1, 1], pads_begin: [1, 1], pads_end: [1, 1], auto_pad: explicit}}
    cases:
      - name: sweep
        data: {data[0]}
        kernel: {kernels[0]}
        strides: [1, 1]
        sweep:
          data: {data}
          kernel: {kernels}
          strides: [[1, 1], [2, 2], [1, 2], [3, 1]]
          dilations: [[1, 1], [2, 2]]
          auto_pad: [explicit, same_upper, same_lower, valid]
    """)
SWEEPS = {
    "layers": _SWEEP.format(data=[[1, 32, 56, 56], [1, 32, 64, 48], [2, 32, 28, 28], [1, 32, 80, 40]],
                            kernels=[[32, 1, 1, 3, 3], [4, 8, 8, 3, 3], [8, 4, 4, 5, 5], [2, 16, 16, 3, 3]]),
    "small": _SWEEP.format(data=[[1, 16, 40, 40], [1, 16, 33, 47], [2, 16, 24, 24], [1, 16, 56, 20]],
                           kernels=[[4, 4, 4, 3, 3], [16, 1, 1, 3, 3], [2, 8, 8, 3, 3], [8, 2, 2, 5, 5]]),
}



def parallel(work: Path, workers: int = 2) -> dict:
    results = {}
    for sweep, text in SWEEPS.items():
        print(f"parallel, {sweep} sweep (serial vs -n {workers}):", flush=True)
        tree = work / f"parallel-{sweep}"
        (tree / "cases").mkdir(parents=True, exist_ok=True)
        (tree / "cases" / "sweep.yaml").write_text(text)
        (tree / "pytest.ini").write_text("[pytest]\nconformance_cases = cases\ntestpaths = cases\n"
                                         "addopts = -p no:cacheprovider\n")
        common = [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", f"--ir-dir={tree / 'ir'}"]
        runs = {}
        for label, extra in (("serial", []), (f"n{workers}", ["-n", str(workers)])):
            measured = _run(common + extra + [f"--conformance-report={tree / (label + '.json')}"],
                            env=_python_env(), cwd=tree)
            items = json.loads((tree / f"{label}.json").read_text())["items"]
            outcomes = {}
            for item in items:
                outcomes[item["outcome"]] = outcomes.get(item["outcome"], 0) + 1
            runs[label] = {"wall_seconds": round(measured["wall_seconds"], 3), "items": len(items),
                           "outcomes": outcomes, "load_before": measured["load_before"],
                           "load_after": measured["load_after"]}
            print(f"    {label}: {len(items)} items {outcomes}, wall {measured['wall_seconds']:.1f} s, "
                  f"load {measured['load_before'][0]:.1f}->{measured['load_after'][0]:.1f}", flush=True)
        speedup = runs["serial"]["wall_seconds"] / runs[f"n{workers}"]["wall_seconds"]
        ratio = _ratio(f"speed-up serial / -n {workers} ({sweep})", speedup, 1.7, "x",
                       f"{runs['serial']['wall_seconds']:.1f} s vs {runs[f'n{workers}']['wall_seconds']:.1f} s",
                       lower_is_better=False)
        results[sweep] = {"runs": runs, "speedup": ratio}
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("benchmarks", nargs="*", metavar="BENCHMARK",
                        help="full_size, overhead and/or parallel (default: all three)")
    parser.add_argument("--json", default=str(ROOT / "benchmarks" / "results" / "benchmark.json"))
    parser.add_argument("--no-bytecode-cache", action="store_true",
                        help="run children with PYTHONDONTWRITEBYTECODE=1 (recompile every module every run)")
    parser.add_argument("--child", nargs=2, metavar=("MODE", "EXAMPLE"), help=argparse.SUPPRESS)
    parser.add_argument("--ir-dir", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], FULL_SIZE[args.child[1]], args.ir_dir), default=str))
        return 0
    global BYTECODE_CACHE
    BYTECODE_CACHE = not args.no_bytecode_cache
    known = ("full_size", "overhead", "parallel")
    args.benchmarks = args.benchmarks or list(known)
    if any(name not in known for name in args.benchmarks):
        parser.error(f"benchmarks are {', '.join(known)}")
    document = {"bytecode_cache": BYTECODE_CACHE,
                "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                            "memory_bytes": os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"),
                            "load_at_start": [round(x, 2) for x in os.getloadavg()]},
                "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "results": {}}
    with tempfile.TemporaryDirectory(prefix="conformance-benchmark-") as scratch:
        work = Path(scratch)
        for name in args.benchmarks:
            if name == "full_size":
                document["results"][name] = full_size(work / "ir")
            elif name == "overhead":
                document["results"][name] = overhead(work)
            else:
                document["results"][name] = parallel(work)
    output = Path(args.json)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(document, indent=2) + "\n")
    print(f"written: {output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
