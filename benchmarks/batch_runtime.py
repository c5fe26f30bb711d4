"""The runtime stage alone over the default suite's batchable cases: batched vs one model per case.

    PYTHONPATH=. python benchmarks/batch_runtime.py --batch-size 32   # batch.run_batch, 32 cases a model
    PYTHONPATH=. python benchmarks/batch_runtime.py --batch-size 1    # runtime.run per case (today's path)

In-process, CPU f32; the cases the plugin would batch (``batch.batch_key`` not None, not registered
as crashed/hung/error). Prints the case count, the wall time of the runtime stage (rendering
included, inputs made beforehand) and the read + compile + infer seconds the results record.
Time it from outside with paired runs (docs/performance.md, "Batched compilation").
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--cases", default=str(ROOT / "cases"))
    options = parser.parse_args(argv)
    from conformance import api, batch, expectations, releases, runtime
    target = api.Target("CPU", "f32")
    registry = expectations.load_registry(ROOT / "expected_failures.yaml")
    release, features = releases.openvino_release(), expectations.target_features(None)
    groups: dict[tuple, list] = {}
    for case in api.load_cases(options.cases):
        known = expectations.match(registry, case.id, target.id, release, features)
        key = batch.batch_key(case, target)
        if "slow" in case.marks or key is None or (known is not None and known.fails in api.RUN_ALONE):
            continue
        groups.setdefault(key, []).append(batch.member(case, api.make_inputs(case)))
    members = [m for group in groups.values() for m in group]
    with tempfile.TemporaryDirectory() as ir_dir:
        started = time.perf_counter()
        results = []
        for group in groups.values():
            for first in range(0, len(group), options.batch_size):
                chunk = group[first:first + options.batch_size]
                if options.batch_size > 1:
                    results += batch.run_batch(chunk, target, ir_dir)
                else:
                    results += [batch._run_alone(m, target, ir_dir, False, 120.0) for m in chunk]
        wall = time.perf_counter() - started
    ran = [r for r in results if isinstance(r, runtime.RunResult)]
    seconds = sum(r.read_seconds + r.compile_seconds + r.infer_seconds for r in ran)
    print(f"batch size {options.batch_size}: {len(members)} cases ({len(members) - len(ran)} not run), "
          f"wall {wall:.2f} s, read+compile+infer {seconds:.2f} s, {1000 * wall / max(1, len(members)):.2f} ms/case")
    return 0


if __name__ == "__main__":
    sys.exit(main())
