"""The Python API: the same calls the pytest plugin and the CLI make.

    from conformance import api
    cases = api.load_cases("cases/group_convolution")
    outcome = api.check(cases[0], api.Target("CPU", "f32"))
    print(outcome.verdict.describe())
"""
from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

import numpy as np

from .case import (DEFAULT_MEMORY_BUDGET, Case, CaseError, CaseFileErrors, footprint_bytes, load_case_file,
                   load_cases_text, load_paths)
from .compare import (INTEGER_TYPES, StreamingComparison, Tolerance, Verdict, compare, max_abs,
                      sparse_reference, tolerance_for)
from .inputs import NUMPY_DTYPES, Inputs, make_inputs
from .oracle import Reference, apply_op, reference, reference_slabs, streamed
from . import ops, post_ops
from .render import RenderedIR, render, runtime_inputs
from .runtime import RunResult, RuntimeRejected, Target, TargetUnavailable, run
from .worker import DEFAULT_TIMEOUT, WorkerFailed, WorkerFailure, needs_worker, run_in_worker

__all__ = [
    "Case", "CaseError", "Inputs", "Outcome", "Reference", "RenderedIR", "RunResult", "RuntimeRejected",
    "Step", "Target", "TargetUnavailable", "Untrustworthy", "Verdict", "check", "check_per_group", "GroupCheck",
    "RunSession",
    "load_cases",
    "load_cases_text", "make_inputs", "prepare", "reference", "render", "run", "streamed",
    "WorkerFailed", "WorkerFailure",
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


class Untrustworthy(Exception):
    """The item's reference cannot tell a right device from a wrong one (e.g. mostly zeros)."""


@dataclass(frozen=True)
class Step:
    """One inference of a case: the data shape, its inputs and the oracle's answer.

    A static case has one step; a dynamic-shape case one per ``infer_shapes``
    entry, all with the same kernel, inferred in sequence on one compiled model.
    """

    data_shape: tuple[int, ...]
    inputs: Inputs
    reference: Reference


def prepare(case: Case) -> tuple[Step, ...]:
    """Inputs and oracle output for every step of ``case`` (independent of the target)."""
    first = make_inputs(case)
    if not case.dynamic:
        return (Step(case.data_shape, first, reference(case, first)),)
    steps = []
    for shape in case.infer_shapes:
        step_case = case.at_data_shape(shape)
        inputs = Inputs(make_inputs(step_case).data, first.kernel)  # one kernel: it is in the IR
        steps.append(Step(tuple(shape), inputs, reference(step_case, inputs)))
    return tuple(steps)


def reached(case: Case) -> np.ndarray:
    """Output elements (shape [1, 1, spatial...]) that any kernel tap reaches, by the geometry alone.

    One channel, one group, all-ones data and kernel: the count of taps landing on each output.
    """
    import torch   # here, not at module level: see oracle.py
    single = replace(case, data_shape=(1, 1) + case.data_shape[2:],
                     kernel_shape=ops.get(case.op).single_channel_kernel_shape(case.kernel_shape))
    with torch.no_grad():
        ones = torch.ones(single.data_shape, dtype=torch.float64)
        taps = apply_op(single, ones, torch.ones(single.kernel_shape, dtype=torch.float64)).numpy()
    return taps > 0


def trust_problem(case: Case, steps: tuple[Step, ...]) -> str | None:
    """Why comparing against these references would prove little, or None."""
    for index, step in enumerate(steps):
        where = f"shape {list(step.data_shape)}: " if case.dynamic else ""
        if case.element_type in INTEGER_TYPES:
            info = np.iinfo(NUMPY_DTYPES[case.element_type])
            output = step.reference.output
            if output.size and (output.max() > int(info.max) or output.min() < int(info.min)):
                return (f"{where}the exact result leaves the {case.element_type} range "
                        f"[{info.min}, {info.max}]: the spec does not say whether {case.element_type} "
                        f"wraps or saturates; narrow fill_range")
        # The op's own output (before post-ops) is what the fill must exercise; ReLU/Clamp zeros are theirs.
        op_output = step.reference.op_output if step.reference.op_output is not None else step.reference.output
        if case.sparse_output_reason is None:
            problem = sparse_reference(op_output, reached(case.at_data_shape(step.data_shape)))
            if problem:
                return where + problem
        problem = post_ops.trust_problem(case, op_output)
        if problem:
            return where + problem
    return None


def feeds(case: Case, steps: tuple[Step, ...]) -> list[dict[str, np.ndarray]]:
    """What each inference is fed: data, and the kernel / output_shape when they are Parameters."""
    sequence = []
    for step in steps:
        sequence.append(runtime_inputs(case, step.inputs.data, step.inputs.kernel))
    return sequence


@dataclass(frozen=True)
class Outcome:
    """Everything one check produced, stage by stage."""

    case: Case
    ir: RenderedIR
    run: RunResult
    reference: Reference | None          # None when streamed: the oracle never existed whole
    verdict: Verdict                     # the first failing step's, else the last step's
    oracle_seconds: float = 0.0          # spent on the oracle in this check (0 when it was passed in)
    compare_seconds: float = 0.0
    streamed: bool = False
    steps: tuple[Step, ...] = ()
    verdicts: tuple[Verdict, ...] = ()   # one per step
    step_index: int = 0                  # which step ``reference``/``verdict`` belong to

    def describe(self) -> str:
        """The verdict; for a sequence, every step's, labelled with its data shape."""
        if len(self.verdicts) <= 1:
            return self.verdict.describe()
        parts = []
        for number, (step, verdict) in enumerate(zip(self.steps, self.verdicts), start=1):
            status = "ok" if verdict.passed else "FAILED"
            parts.append(f"inference {number}/{len(self.steps)} data={list(step.data_shape)}: {status}")
            if not verdict.passed:
                parts.append("  " + verdict.describe().replace("\n", "\n  "))
        return "\n".join(parts)


def _tolerance(case: Case, result: RunResult, inputs: Inputs, accumulation_length: int,
               magnitude_max: float) -> Tolerance:
    """The bound for one inference: from what the op really computed in (compare.py, README "Tolerances")."""
    terms = post_ops.tolerance_terms(case, result.extra.get("post_ops"))
    return tolerance_for(result.compute_precision, accumulation_length, inputs.data, inputs.kernel, *terms.arrays,
                         element_type=case.element_type, output_precision=result.output_precision,
                         magnitude_max=magnitude_max, scale=case.tolerance_scale, reason=case.tolerance_reason,
                         post_op_roundings=terms.arithmetic, intermediate_roundings=terms.intermediate)


def check(case: Case, target: Target, ir_dir: Path | str = DEFAULT_IR_DIR,
          expected: Reference | None = None, inputs: Inputs | None = None,
          isolate: bool = False, timeout: float = DEFAULT_TIMEOUT,
          stream: bool | None = None, progress: Callable[[str], None] | None = None,
          steps: tuple[Step, ...] | None = None, python: str | None = None) -> Outcome:
    """Render ``case``, run it on ``target``, compute the oracle, compare.

    ``steps`` (from ``prepare``), or ``inputs`` and ``expected`` for a static
    case, may be passed in when already computed (the plugin reuses them across
    targets). Raises ``Untrustworthy`` before running when the references could
    not tell a right output from a wrong one, ``TargetUnavailable`` when the
    device refuses the configuration as unsupported, ``RuntimeRejected`` when
    OpenVINO fails to compile or infer a model the spec allows. The runtime
    stage runs in a worker process when the target needs its own environment
    (an ISA cap) or ``isolate`` is set; a worker that crashes or exceeds
    ``timeout`` raises ``WorkerFailed`` (its ``.failure`` says which, with the
    stderr tail). Large static outputs (``oracle.streamed``; force with
    ``stream``) are checked slab by slab: the oracle is computed and compared
    one slab of output planes at a time, and ``progress`` (if given) receives a
    line per slab. ``python``: the interpreter of another environment with
    another OpenVINO release (``conformance.releases``) to run the runtime
    stage in, in a worker; the oracle and the comparison stay here.
    """
    oracle_seconds = 0.0
    if steps is None and expected is not None and inputs is not None and not case.dynamic:
        steps = (Step(case.data_shape, inputs, expected),)
    stream_it = steps is None and not case.dynamic and (stream if stream is not None else streamed(case))
    if steps is None and not stream_it:
        steps = prepare(case)
        oracle_seconds = sum(step.reference.seconds for step in steps)
    if steps is not None:
        problem = trust_problem(case, steps)
        if problem:
            raise Untrustworthy(problem)
        inputs = steps[0].inputs
    elif inputs is None:
        inputs = make_inputs(case)
    ir = render(case, inputs, ir_dir)
    sequence = feeds(case, steps) if steps is not None else feeds(case, (Step(case.data_shape, inputs, None),))
    if progress is not None and stream_it:
        progress(f"{case.id} [{target.id}]: OpenVINO compile + infer of {list(case.geometry().output_shape)} ...")
    if isolate or needs_worker(target) or python:
        result = run_in_worker(ir, sequence, target, timeout, python=python)
        if isinstance(result, WorkerFailure):
            raise WorkerFailed(result)
    else:
        result = run(ir, sequence, target)
    if case.post_ops:   # which post-ops the plugin fused: in the run record (report, failure message)
        result = replace(result, extra={**result.extra, "post_ops": post_ops.fusion_record(case, result.extra)})
    if steps is None:
        # A priori bound on sum|x*w| (no whole magnitude array exists): max|x| * max|w| * K.
        geometry = case.geometry()
        bound = post_ops.magnitude_bound(
            case, max_abs(inputs.data) * max_abs(inputs.kernel) * geometry.accumulation_length)
        tolerance = _tolerance(case, result, inputs, geometry.accumulation_length, bound)
        return _check_streamed(case, ir, result, inputs, tolerance, progress)
    started = time.perf_counter()
    verdicts = []
    outputs = result.outputs if len(steps) > 1 else (result.output,)
    for step, output in zip(steps, outputs):
        magnitude = step.reference.magnitude
        tolerance = _tolerance(case, result, step.inputs, step.reference.geometry.accumulation_length,
                               float(magnitude.max()) if magnitude.size else 0.0)
        verdicts.append(compare(step.reference.output, magnitude, output, tolerance))
    failing = [index for index, verdict in enumerate(verdicts) if not verdict.passed]
    chosen = failing[0] if failing else len(verdicts) - 1
    return Outcome(case, ir, result, steps[chosen].reference, verdicts[chosen], oracle_seconds,
                   time.perf_counter() - started, steps=steps, verdicts=tuple(verdicts), step_index=chosen)


def _check_streamed(case, ir, result, inputs, tolerance, progress) -> Outcome:
    """Oracle and comparison in slabs of output planes: memory stays ~one slab beyond OpenVINO's output."""
    expected_shape = case.geometry().output_shape
    comparison = StreamingComparison(expected_shape, tuple(result.output.shape), tolerance)
    oracle_seconds = 0.0
    if progress is not None:
        progress(f"{case.id} [{result.target_id}]: OpenVINO done (compile {result.compile_seconds:.1f} s, "
                 f"infer {result.infer_seconds:.1f} s); oracle + comparison by slabs")
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


# --- a run session: what the pytest plugin (and any other driver) keeps between items --------

class RunSession:
    """Settings of one run (IR directory, isolation, time limit) and the oracle's results, reused
    while consecutive items share a case (the same case on other targets).

    The pytest plugin drives one per process; ``check`` is ``api.check`` with the session's
    settings, ``check_per_group`` the per-group diagnosis of a failing grouped item.
    """

    def __init__(self, ir_dir: Path | str = DEFAULT_IR_DIR, isolate: bool = True,
                 timeout: float = DEFAULT_TIMEOUT):
        self.ir_dir, self.isolate, self.timeout = Path(ir_dir), isolate, timeout
        self._cached: tuple | None = None  # (case id, inputs, prepare(case) or None when streamed)
        self.reference_owner: str | None = None

    def prepared(self, case: Case) -> tuple[Inputs, tuple[Step, ...] | None]:
        """Inputs and the oracle's steps (``prepare``), reused while consecutive items share a case.

        Streamed (full-size) cases get no whole reference (steps ``None``): ``check``
        computes it slab by slab. The previous case's arrays are dropped first.
        """
        if self._cached is None or self._cached[0] != case.id:
            self._cached = None
            if streamed(case) and not case.dynamic:
                self._cached = (case.id, make_inputs(case), None)
            else:
                steps = prepare(case)
                self._cached = (case.id, steps[0].inputs, steps)
            self.reference_owner = None   # the first item using it pays for (and records) the oracle
        return self._cached[1], self._cached[2]

    def check(self, case: Case, target: Target, *, force_isolation: bool = False,
              progress: Callable[[str], None] | None = None) -> Outcome:
        """``check`` of ``case`` on ``target`` with the session's inputs, oracle and settings;
        ``force_isolation``: in a worker even when the session is not isolated (an item known to crash)."""
        inputs, steps = self.prepared(case)
        return check(case, target, self.ir_dir, inputs=inputs, steps=steps,
                     isolate=self.isolate or force_isolation, timeout=self.timeout, progress=progress)

    def check_per_group(self, case: Case, target: Target) -> GroupCheck | None:
        """The per-group diagnosis of a failing grouped item (``check_per_group``); never raises:
        a problem of the diagnosis itself is its note."""
        inputs, steps = self.prepared(case)
        whole = steps is not None and len(steps) == 1
        try:
            return check_per_group(case, target, steps[0].inputs if whole else inputs,
                                   steps[0].reference if whole else None, self.ir_dir,
                                   isolate=self.isolate, timeout=self.timeout)
        except Exception as error:   # the diagnosis must never hide the failure it explains
            return GroupCheck(ops.get(case.op).sibling or "-", 0, None, note=f"{type(error).__name__}: {error}")


# --- the per-group decomposition of a failing grouped item --------------------------------

MAX_DECOMPOSED_GROUPS = 64   # one compile per group: beyond this the decomposition is not tried


@dataclass(frozen=True)
class GroupCheck:
    """A grouped case re-run as its ungrouped sibling op, one model per group on that group's channel
    slice, the outputs concatenated along the channels and compared with the same reference."""

    sibling: str                    # the ungrouped op (Convolution, ConvolutionBackpropData)
    groups: int
    passed: bool | None             # None: not tried (``note`` says why)
    verdict: Verdict | None = None
    error: str | None = None        # the sibling's compile/infer error, if it failed that way
    note: str | None = None

    def describe(self) -> str:
        """One line for a failure message: is the deviation specific to the grouped op?"""
        what = f"per-group check ({self.groups} x {self.sibling} on each group's channels, concatenated)"
        if self.passed is None:
            return f"{what}: not tried ({self.note})"
        if self.passed:
            return f"{what}: passes -> the deviation is specific to the grouped op"
        if self.error is not None:
            return f"{what}: {self.sibling} fails too ({self.error.splitlines()[0] if self.error else 'error'})"
        return (f"{what}: fails too ({self.verdict.mismatches}/{self.verdict.total} mismatches) -> "
                f"not specific to the grouped op")

    def record(self) -> dict:
        """The report record's ``per_group`` field."""
        record = {"sibling": self.sibling, "groups": self.groups, "passed": self.passed}
        if self.verdict is not None:
            record.update(mismatches=self.verdict.mismatches, total=self.verdict.total)
        if self.error is not None:
            record["error"] = self.error.splitlines()[0] if self.error else ""
        if self.note is not None:
            record["note"] = self.note
        return record


def group_slices(case: Case, inputs: Inputs) -> list[tuple[Case, Inputs]]:
    """``case`` as one sibling-op case per group: that group's data channels and kernel
    (the kernel's group axis dropped), every attribute as it is."""
    op = ops.get(case.op)
    sibling = ops.get(op.sibling)
    groups, c_in, c_out = op.channels(case.kernel_shape)
    parts = []
    for group in range(groups):
        data = np.ascontiguousarray(inputs.data[:, group * c_in:(group + 1) * c_in])
        kernel = np.ascontiguousarray(op.grouped_kernel(inputs.kernel)[group])
        sub = replace(case, id=f"{case.id}#group{group}", op=sibling.name, data_shape=tuple(data.shape),
                      kernel_shape=sibling.ungrouped_shape((1,) + tuple(kernel.shape)),
                      post_ops=post_ops.channel_slice(case, group * c_out, (group + 1) * c_out))
        parts.append((sub, Inputs(data, kernel.reshape(sub.kernel_shape))))
    return parts


def check_per_group(case: Case, target: Target, inputs: Inputs, expected: Reference,
                    ir_dir: Path | str = DEFAULT_IR_DIR, isolate: bool = False,
                    timeout: float = DEFAULT_TIMEOUT) -> GroupCheck | None:
    """Re-run a grouped ``case`` as its sibling op per group on ``target`` (``group_slices``) and
    compare the concatenation with ``expected``, the grouped case's reference; None for an op
    without a sibling. Used when a grouped item fails: does the ungrouped op get it right?"""
    op = ops.get(case.op)
    if op.sibling is None:
        return None
    groups = op.channels(case.kernel_shape)[0]
    if case.dynamic or expected is None:
        return GroupCheck(op.sibling, groups, None, note="dynamic or streamed case")
    if groups > MAX_DECOMPOSED_GROUPS:
        return GroupCheck(op.sibling, groups, None, note=f"more than {MAX_DECOMPOSED_GROUPS} groups")
    outputs, result = [], None
    for sub, sub_inputs in group_slices(case, inputs):
        ir = render(sub, sub_inputs, ir_dir)
        feed = [runtime_inputs(sub, sub_inputs.data, sub_inputs.kernel)]
        try:
            if isolate or needs_worker(target):
                result = run_in_worker(ir, feed, target, timeout)
                if isinstance(result, WorkerFailure):
                    return GroupCheck(op.sibling, groups, False, error=result.describe())
            else:
                result = run(ir, feed, target)
        except (RuntimeRejected, TargetUnavailable) as error:
            return GroupCheck(op.sibling, groups, False, error=str(error))
        outputs.append(result.output)
    output = np.concatenate(outputs, axis=1)
    magnitude = expected.magnitude
    tolerance = _tolerance(case, result, inputs, expected.geometry.accumulation_length,
                           float(magnitude.max()) if magnitude.size else 0.0)
    verdict = compare(expected.output, magnitude, output, tolerance)
    return GroupCheck(op.sibling, groups, verdict.passed, verdict)


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
