"""The Python API: the same calls the pytest plugin and the CLI make.

    from conformance import api
    cases = api.load_cases("cases/group_convolution")
    outcome = api.check(cases[0], api.Target("CPU", "f32"))
    print(outcome.verdict.describe())
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .case import (DEFAULT_MEMORY_BUDGET, Case, CaseError, CaseFileErrors, footprint_bytes, load_case_file,
                   load_cases_text)
from .compare import Verdict, compare, tolerance_for
from .inputs import Inputs, make_inputs
from .oracle import Reference, reference
from .render import RenderedIR, render
from .runtime import RunResult, Target, TargetUnavailable, run
from .worker import DEFAULT_TIMEOUT, WorkerFailed, WorkerFailure, needs_worker, run_in_worker

__all__ = [
    "Case", "CaseError", "Inputs", "Outcome", "Reference", "RenderedIR", "RunResult", "Target",
    "TargetUnavailable", "Verdict", "check", "load_cases", "load_cases_text", "make_inputs",
    "reference", "render", "run", "WorkerFailed", "WorkerFailure",
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
    reference: Reference
    verdict: Verdict


def check(case: Case, target: Target, ir_dir: Path | str = DEFAULT_IR_DIR,
          expected: Reference | None = None, inputs: Inputs | None = None,
          isolate: bool = False, timeout: float = DEFAULT_TIMEOUT) -> Outcome:
    """Render ``case``, run it on ``target``, compute the oracle, compare.

    ``inputs`` and ``expected`` may be passed in when already computed for the
    same case (the plugin reuses them across targets). The runtime stage runs
    in a worker process when the target needs its own environment (an ISA cap)
    or ``isolate`` is set; a worker that crashes or exceeds ``timeout`` raises
    ``WorkerFailed`` (its ``.failure`` says which, with the stderr tail).
    """
    inputs = inputs if inputs is not None else make_inputs(case)
    ir = render(case, inputs, ir_dir)
    if isolate or needs_worker(target):
        result = run_in_worker(ir, inputs.data, target, timeout)
        if isinstance(result, WorkerFailure):
            raise WorkerFailed(result)
    else:
        result = run(ir, inputs.data, target)
    expected = expected if expected is not None else reference(case, inputs)
    tolerance = tolerance_for(result.inference_precision, expected.geometry.accumulation_length,
                              inputs.data, inputs.kernel)
    verdict = compare(expected.output, expected.magnitude, result.output, tolerance)
    return Outcome(case, ir, result, expected, verdict)
