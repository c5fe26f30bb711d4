"""The Python API: the same calls the pytest plugin and the CLI make.

    from conformance import api
    cases = api.load_cases("cases/group_convolution")
    outcome = api.check(cases[0], api.Target("CPU", "f32"))
    print(outcome.verdict.describe())
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from .case import (DEFAULT_MEMORY_BUDGET, Case, CaseError, CaseFileErrors, footprint_bytes, load_case_file,
                   load_cases_text, load_paths)
from .compare import StreamingComparison, Verdict, compare, tolerance_for
from .inputs import Inputs, make_inputs
from .oracle import Reference, reference, reference_slabs, streamed
from .render import RenderedIR, render
from .runtime import RunResult, Target, TargetUnavailable, run
from .worker import DEFAULT_TIMEOUT, WorkerFailed, WorkerFailure, needs_worker, run_in_worker

__all__ = [
    "Case", "CaseError", "Inputs", "Outcome", "Reference", "RenderedIR", "RunResult", "Target",
    "TargetUnavailable", "Verdict", "check", "load_cases", "load_cases_text", "make_inputs",
    "reference", "render", "run", "streamed", "WorkerFailed", "WorkerFailure",
    # authoring
    "CaseFileErrors", "DEFAULT_MEMORY_BUDGET", "Export", "expected_output", "export", "footprint_bytes",
    "validate",
]

DEFAULT_IR_DIR = Path(".conformance") / "ir"


def load_cases(path: Path | str, root: Path | str | None = None, *,
               memory_budget: int | str | None = DEFAULT_MEMORY_BUDGET) -> list[Case]:
    """All cases in a case file, or in every ``*.yaml`` below a directory (sorted).

    Raises ``CaseError`` (``CaseFileErrors`` listing every problem of the first bad
    file). ``memory_budget``: bytes or ``"16GiB"``; cases needing more are refused.
    """
    path = Path(path)
    if path.is_dir():
        root = root or path
        return [case for file in sorted(path.rglob("*.yaml"))
                for case in load_case_file(file, root, memory_budget=memory_budget)]
    return load_case_file(path, root, memory_budget=memory_budget)


@dataclass(frozen=True)
class Outcome:
    """Everything one check produced, stage by stage."""

    case: Case
    ir: RenderedIR
    run: RunResult
    reference: Reference | None     # None when streamed: the oracle never existed whole
    verdict: Verdict
    oracle_seconds: float = 0.0     # spent on the oracle in this check (0 when ``expected`` was reused)
    compare_seconds: float = 0.0
    streamed: bool = False


def check(case: Case, target: Target, ir_dir: Path | str = DEFAULT_IR_DIR,
          expected: Reference | None = None, inputs: Inputs | None = None,
          isolate: bool = False, timeout: float = DEFAULT_TIMEOUT,
          stream: bool | None = None, progress: Callable[[str], None] | None = None) -> Outcome:
    """Render ``case``, run it on ``target``, compute the oracle, compare.

    ``inputs`` and ``expected`` may be passed in when already computed for the
    same case (the plugin reuses them across targets). The runtime stage runs
    in a worker process when the target needs its own environment (an ISA cap)
    or ``isolate`` is set; a worker that crashes or exceeds ``timeout`` raises
    ``WorkerFailed`` (its ``.failure`` says which, with the stderr tail).
    Large outputs (``oracle.streamed``; force with ``stream``) are checked slab
    by slab: the oracle is computed and compared one slab of output planes at
    a time, and ``progress`` (if given) receives a line per slab.
    """
    inputs = inputs if inputs is not None else make_inputs(case)
    ir = render(case, inputs, ir_dir)
    if isolate or needs_worker(target):
        result = run_in_worker(ir, inputs.data, target, timeout)
        if isinstance(result, WorkerFailure):
            raise WorkerFailed(result)
    else:
        result = run(ir, inputs.data, target)
    geometry = case.geometry()
    tolerance = tolerance_for(result.inference_precision, geometry.accumulation_length,
                              inputs.data, inputs.kernel)
    if expected is None and (stream if stream is not None else streamed(case)):
        return _check_streamed(case, ir, result, inputs, tolerance, progress)
    oracle_seconds = 0.0
    if expected is None:
        expected = reference(case, inputs)
        oracle_seconds = expected.seconds
    started = time.perf_counter()
    verdict = compare(expected.output, expected.magnitude, result.output, tolerance)
    return Outcome(case, ir, result, expected, verdict, oracle_seconds, time.perf_counter() - started)


def _check_streamed(case, ir, result, inputs, tolerance, progress) -> Outcome:
    """Oracle and comparison in slabs of output planes: memory stays ~one slab beyond OpenVINO's output."""
    expected_shape = case.geometry().output_shape
    comparison = StreamingComparison(expected_shape, tuple(result.output.shape), tolerance)
    oracle_seconds = 0.0
    if comparison.expected_shape == comparison.actual_shape:
        started = time.perf_counter()
        depth = expected_shape[2]
        for slab in reference_slabs(case, inputs):
            oracle_seconds += slab.seconds
            comparison.add(slab.start, slab.output, slab.magnitude, result.output[:, :, slab.start:slab.stop])
            if progress is not None:
                progress(f"{case.id} [{result.target_id}]: oracle+compare planes {slab.stop}/{depth} "
                         f"({100 * slab.stop // depth}%), {time.perf_counter() - started:.1f} s, "
                         f"{comparison.mismatches} mismatches so far")
    return Outcome(case, ir, result, None, comparison.verdict(), oracle_seconds, comparison.seconds,
                   streamed=True)


# --- authoring: validate, oracle for given inputs, export for benchmark_app ------------

def validate(paths, root: Path | str | None = None, *,
             memory_budget: int | str | None = DEFAULT_MEMORY_BUDGET) -> tuple[list[Case], list[CaseError]]:
    """Load every case file under ``paths`` (files or directories); never raises for bad input.

    Returns the cases that loaded and every problem found (each a located
    ``CaseError``), so one bad file does not hide the others. A directory is its
    own cases root unless ``root`` is given: files (or symlinks) leading outside
    the root are refused.
    """
    return load_paths(paths, root, memory_budget=memory_budget)


def expected_output(case: Case, data=None, kernel=None):
    """The spec's output (float64 numpy array) for ``case`` on the given inputs.

    ``data``/``kernel`` default to the case's own seeded inputs; arrays given must
    have the case's shapes (the oracle computes in float64 whatever their dtype).
    """
    import numpy as np
    default = make_inputs(case)
    data = default.data if data is None else np.asarray(data)
    kernel = default.kernel if kernel is None else np.asarray(kernel)
    for what, array, shape in (("data", data, case.data_shape), ("kernel", kernel, case.kernel_shape)):
        if tuple(array.shape) != tuple(shape):
            raise ValueError(f"{what} has shape {list(array.shape)}, the case says {list(shape)}")
    return reference(case, Inputs(data, kernel)).output


@dataclass(frozen=True)
class Export:
    """A case on disk for tools outside the harness (OpenVINO's benchmark_app, read_model)."""

    xml_path: Path
    bin_path: Path
    data_path: Path             # the input, .npy (float32, the IR's element type)
    expected_path: Path         # the spec's output, .npy (float64)

    def benchmark_app_command(self, device: str = "CPU", precision: str = "f32") -> str:
        """A ``benchmark_app`` line that runs the IR on the exported input."""
        from .render import DATA_INPUT_NAME
        return (f"benchmark_app -m {self.xml_path} -i {DATA_INPUT_NAME}:{self.data_path} -d {device} "
                f"-infer_precision {precision} -hint latency -niter 100")


def file_stem(case: Case) -> str:
    """A file name for ``case``: its name and swept values, safe on every filesystem
    and in benchmark_app's arguments (which split on '=' and ':')."""
    import re
    return re.sub(r"[^A-Za-z0-9._-]+", "_", case.id.split("::", 1)[-1]).strip("_")[:150] or "case"


def export(case: Case, directory: Path | str, inputs: Inputs | None = None) -> Export:
    """Write ``case``'s IR (``<stem>.xml``/``.bin``, the same bytes ``render`` writes),
    its input and the spec's expected output (``.npy``) to ``directory``."""
    import numpy as np
    from .render import render_bytes
    inputs = inputs if inputs is not None else make_inputs(case)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    stem = file_stem(case)
    xml, weights = render_bytes(case, inputs)
    paths = Export(directory / f"{stem}.xml", directory / f"{stem}.bin",
                   directory / f"{stem}.data.npy", directory / f"{stem}.expected.npy")
    paths.xml_path.write_bytes(xml)
    paths.bin_path.write_bytes(weights)
    np.save(paths.data_path, inputs.data)
    np.save(paths.expected_path, reference(case, inputs).output)
    return paths
