"""Print what running the runtime stage in a worker process costs, against running it in-process.

    PYTHONPATH=. python benchmarks/worker_overhead.py [--repeat 20]

For a small, a large (pickled through the pipe) and a huge (>= worker.SHARED_FILE_BYTES:
mapped files in /dev/shm) case it prints: in-process time of runtime.run, the
round trip through a warm worker (pickle of the input and the RunResult, pipe,
the same runtime.run), their difference (the per-job overhead), and the
startup of a fresh worker (process start, imports, openvino.Core()).
"""
from __future__ import annotations

import argparse
import math
import statistics
import tempfile
import time

from conformance import api, runtime
from conformance.worker import WorkerPool

CASES = """
op: GroupConvolution
cases:
  - {name: small, data: [1, 8, 8, 8], kernel: [8, 1, 1, 3, 3], pads_begin: [1, 1], pads_end: [1, 1]}
  - {name: large, data: [1, 64, 112, 112], kernel: [64, 1, 1, 3, 3], pads_begin: [1, 1], pads_end: [1, 1]}
  - {name: huge, data: [1, 64, 384, 384], kernel: [64, 1, 1, 3, 3], pads_begin: [1, 1], pads_end: [1, 1]}
"""


def _median(function, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=20)
    args = parser.parse_args()
    target = runtime.Target("CPU", "f32")
    pool = WorkerPool()
    with tempfile.TemporaryDirectory() as directory:
        for case in api.load_cases_text(CASES):
            inputs = api.make_inputs(case)
            ir = api.render(case, inputs, directory)
            runtime.run(ir, inputs.data, target)          # warm both sides
            pool.run(ir, inputs.data, target)
            here = _median(lambda: runtime.run(ir, inputs.data, target), args.repeat)
            there = _median(lambda: pool.run(ir, inputs.data, target), args.repeat)
            megabytes = (inputs.data.nbytes + 4 * math.prod(case.geometry().output_shape)) / 2 ** 20
            print(f"{case.name:6s} in+out {megabytes:6.2f} MiB: in-process {here * 1e3:7.2f} ms, "
                  f"worker {there * 1e3:7.2f} ms, overhead {(there - here) * 1e3:6.2f} ms per job")
    startups = []
    for _ in range(3):
        fresh = WorkerPool()
        start = time.perf_counter()
        fresh.call(int, "0")
        startups.append(time.perf_counter() - start)
        fresh.shutdown()
    print(f"fresh worker startup (spawn, imports, openvino.Core): median {statistics.median(startups):.2f} s "
          f"of {len(startups)}")
    pool.shutdown()


if __name__ == "__main__":
    main()
