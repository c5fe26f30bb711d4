"""The Python API: the same calls the pytest plugin and the CLI make.

    from conformance import api
    cases = api.load_cases("cases/group_convolution")
    outcome = api.check(cases[0], api.Target("CPU", "f32"))
    print(outcome.verdict.describe())
"""
from __future__ import annotations

import math
import os
import time
from concurrent.futures import Future
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

from . import bundles, expectations
from . import report as reporting
from .case import (DEFAULT_MEMORY_BUDGET, Case, CaseError, CaseFileErrors, footprint_bytes, format_size,
                   load_case_file, load_cases_text, load_paths)
from .compare import (INTEGER_TYPES, StreamingComparison, Tolerance, Verdict, compare, max_abs,
                      sparse_reference, tolerance_for)
from .inputs import NUMPY_DTYPES, Inputs, first_draw, inference_inputs, make_inputs, redrawn, settled
from .oracle import Reference, reference, reference_slabs, streamed
from .taps import reached
from . import ops, perf, post_ops
from .batch import Member, batch_key, member, run_batch, sequence_kind, with_batch_record
from .lane import Lane
from .render import RenderedIR, render
from .runtime import RunResult, RuntimeRejected, Target, TargetUnavailable, openvino_version, run
from .worker import (DEFAULT_TIMEOUT, WorkerFailed, WorkerFailure, needs_worker, planned_inference_threads,
                     run_in_worker)

__all__ = [
    "Case", "CaseError", "Inputs", "Outcome", "Reference", "RenderedIR", "RunResult", "RuntimeRejected",
    "Step", "Target", "TargetUnavailable", "Untrustworthy", "Verdict", "check", "check_per_group",
    "check_per_group_together", "GroupCheck",
    "Planned", "RunSession", "run_batch", "ItemResult", "ItemPolicy", "item_policy", "item_ending", "item_kinds", "report_environment",
    "run_stage", "targets_for", "describe_case",
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


def prepare(case: Case, inputs: Inputs | None = None) -> tuple[Step, ...]:
    """Inputs and oracle output for every step of ``case`` (independent of the target);
    ``inputs``: ``make_inputs(case)`` when the caller already made them."""
    every = inference_inputs(case, inputs)
    if not case.dynamic:
        return (Step(case.data_shape, every[0], reference(case, every[0])),)
    return tuple(Step(tuple(shape), step_inputs, reference(case.at_data_shape(shape), step_inputs))
                 for shape, step_inputs in zip(case.infer_shapes, every))


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


def feeds(ir: RenderedIR, steps: tuple[Step, ...]) -> list[dict[str, np.ndarray]]:
    """What each inference of ``ir`` is fed: its runtime inputs as rendered (``RenderedIR.feed``),
    the data (and the kernel when it is a Parameter) from each step's inputs."""
    return [ir.feed(step.inputs) for step in steps]


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
    note: str | None = None              # said after the verdict (e.g. "fails only inside a batch")

    def describe(self) -> str:
        """The verdict; for a sequence, every step's, labelled with its data shape; then the note."""
        if self.note:
            return f"{replace(self, note=None).describe()}\n{self.note}"
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


def run_stage(ir: RenderedIR, sequence: list[dict[str, np.ndarray]], target: Target, *, isolate: bool = False,
              timeout: float = DEFAULT_TIMEOUT, python: str | None = None) -> RunResult:
    """The runtime stage: compile ``ir`` on ``target`` and infer every feed of ``sequence``.

    In a worker process when ``isolate`` is set, the target needs its own environment (an
    ISA cap) or ``python`` names another interpreter; a worker that crashes or overruns
    ``timeout`` raises ``WorkerFailed``.
    """
    if isolate or needs_worker(target) or python:
        result = run_in_worker(ir, sequence, target, timeout, python=python)
        if isinstance(result, WorkerFailure):
            raise WorkerFailed(result)
        return result
    return run(ir, sequence, target)


def check(case: Case, target: Target, ir_dir: Path | str = DEFAULT_IR_DIR,
          expected: Reference | None = None, inputs: Inputs | None = None,
          isolate: bool = False, timeout: float = DEFAULT_TIMEOUT,
          stream: bool | None = None, progress: Callable[[str], None] | None = None,
          steps: tuple[Step, ...] | None = None, python: str | None = None,
          runner: Callable[..., RunResult] | None = None) -> Outcome:
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
    stage in, in a worker; the oracle and the comparison stay here. ``runner``
    replaces ``run_stage`` (same signature): ``RunSession`` passes its own.
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
    sequence = feeds(ir, steps) if steps is not None else [ir.feed(inputs)]
    if progress is not None and stream_it:
        progress(f"{case.id} [{target.id}]: OpenVINO compile + infer of {list(case.geometry().output_shape)} ...")
    result = (runner or run_stage)(ir, sequence, target, isolate=isolate, timeout=timeout, python=python)
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


def given_result(result) -> Callable[..., RunResult]:
    """A ``check`` runner that returns (or raises) a result obtained beforehand (``batch.run_batch``)."""
    def runner(ir, sequence, target, **settings):
        if isinstance(result, WorkerFailure):
            raise WorkerFailed(result)
        if isinstance(result, BaseException):
            raise result
        return result
    return runner


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


# --- a run session: what the pytest plugin and the CLI keep between items, and how an item ends ---

# How an item can end (``ItemResult.status``): a verdict (passed/failed), OpenVINO refused the model
# (rejected), the reference proves nothing (untrustworthy), the isolated worker died or overran its
# time limit (crashed/hung), or the target cannot run the configuration (unavailable: a skip).
ITEM_STATUSES = ("passed", "failed", "rejected", "untrustworthy", "crashed", "hung", "unavailable")
# The registry's ``fails`` kinds and the status each one stands for.
REGISTERED_STATUS = {"mismatch": "failed", "error": "rejected", "crashed": "crashed", "hung": "hung"}


def relative_path(path: Path | str, start: Path | str, *, resolve: bool = True) -> str:
    """``path`` relative to ``start`` (POSIX), so records don't depend on the checkout; ``resolve=False``
    keeps a symlink's own name. A path that cannot be resolved (a symlink loop) is taken as given."""
    if resolve:
        try:
            where = Path(path).resolve()
        except (OSError, RuntimeError):
            where = Path(path).absolute()
    else:
        where = Path(os.path.abspath(path))
    return Path(os.path.relpath(where, Path(start).resolve())).as_posix()


def describe_case(case: Case) -> str:
    """One line of a case's shapes and attributes, as a failure needs them."""
    attributes = " ".join(f"{key}={value}" for key, value in case.attributes().items())
    shape = f" output_shape={','.join(map(str, case.output_shape))}" if case.output_shape else ""
    note = f"\nspec note: {case.spec_note}" if case.spec_note else ""
    numerics = "" if case.element_type == "f32" else f" element_type={case.element_type}"
    numerics += "".join(f" {name}=parameter" for name in ("kernel_input", "output_shape_input")
                        if getattr(case, name) == "parameter")
    if case.dynamic:
        numerics += f" data_dims={list(case.data_dims)} infer_shapes={[list(s) for s in case.infer_shapes]}"
    return (f"{case.op} data={list(case.data_shape)} kernel={list(case.kernel_shape)} {attributes}{shape} "
            f"fill={case.fill} seed={case.seed}{numerics}{post_ops.describe(case)}{note}")


def targets_for(targets: list[Target], case: Case) -> list[Target]:
    """``targets``, plus each of them under the hints the case declares (``precisions``)."""
    chosen = list(targets)
    for target in targets:
        for precision in case.precisions:
            extra = replace(target, precision=precision)
            if all(t.id != extra.id for t in chosen):
                chosen.append(extra)
    return chosen


def item_kinds(case: Case, target: Target) -> list[str]:
    """Report groups of one item: the case's kinds plus ``precision=<hint>`` for non-f32 hints."""
    kinds = list(case.kinds)
    if target.precision != "f32":
        kinds.insert(0, f"precision={target.precision}")
    return kinds


@dataclass(frozen=True)
class ItemPolicy:
    """What a driver does with an item before it runs: skip it (``skip``: why), or expect the
    registered kind of failure (``expected``: the registry entry, ``reason``: the xfail text)."""

    skip: str | None = None
    expected: expectations.ExpectedFailure | None = None
    reason: str | None = None

    @property
    def registered_failure(self) -> str | None:
        """The registry's ``fails`` for this item (mismatch, error, crashed, hung), if registered."""
        return self.expected.fails if self.expected is not None else None

    @property
    def strict(self) -> bool:
        """False for an entry registered ``intermittent``: passing is then not a failure (XPASS)."""
        return self.expected is None or not self.expected.intermittent


def item_policy(case: Case, target: Target, registry: list[expectations.ExpectedFailure], release: str, *,
                run_slow: bool = False, memory_budget: int | None = None) -> ItemPolicy:
    """Skip and expected-failure policy of ``case`` on ``target`` under OpenVINO ``release``.

    Slow (full-size) cases are skipped unless ``run_slow``; items whose estimated memory
    (``footprint_bytes``) exceeds ``memory_budget`` are skipped; otherwise the first registry
    entry covering the item on this release and the target's effective CPU features (this CPU's,
    left by the target's ISA cap) makes it an expected failure of that kind only.
    """
    skip = None
    if "slow" in case.marks and not run_slow:
        skip = "slow (full-size) case: run with --runslow"
    elif memory_budget is not None and footprint_bytes(case) > memory_budget:
        skip = (f"needs about {format_size(footprint_bytes(case))} (estimated: case.footprint_bytes), "
                f"over the memory budget of {format_size(memory_budget)} "
                f"(raise it with --memory-budget / ini conformance_memory_budget)")
    features = expectations.target_features(target.isa)
    known = expectations.match(registry, case.id, target.id, release, features,
                               threads=planned_inference_threads())
    return ItemPolicy(skip, known, known.describe(features) if known is not None else None)


@dataclass
class ItemResult:
    """How one item (a case on a target) ended: what a driver maps onto its own terms (the pytest
    plugin onto skip/raise/user_properties, the CLI onto lines and an exit code)."""

    case: Case
    target: Target
    status: str                              # one of ITEM_STATUSES
    message: str = ""                        # the verdict, OpenVINO's error, or why untrustworthy/unavailable
    outcome: Outcome | None = None           # passed/failed: everything the check produced
    failure: WorkerFailure | None = None     # crashed/hung: what the worker did
    ir: RenderedIR | None = None
    repro: Path | None = None                # the repro bundle of a failing item
    record: dict | None = None               # the report record's repro/run/verdict fields (report.ItemRecord)
    per_group: GroupCheck | None = None      # a failing grouped item re-run as its sibling op per group
    registry_conflict: str | None = None     # registered to crash (hang) but the worker hung (crashed)
    timeout: float = DEFAULT_TIMEOUT         # the isolated run's time limit
    perf: dict | None = None                 # a passed item's performance record (--perf, ``perf.measure``)

    @property
    def passed(self) -> bool:
        return self.status == "passed"

    def explain(self, repro_start: Path | str | None = None) -> str:
        """The failure text of a failing item (``""`` when it passed or did not run); repro bundle
        paths relative to ``repro_start`` (default the working directory)."""
        case, target = self.case, self.target
        head = f"{case.id} on {target.id}"
        if self.registry_conflict is not None:
            return "\n".join([f"{head}: the OpenVINO worker failed otherwise than registered",
                              f"case: {case.source}", self.registry_conflict, *self._repro_lines(repro_start)])
        if self.status == "failed":
            run = self.outcome.run
            return "\n".join([
                f"{head}: OpenVINO's output differs from the spec", f"case: {case.source}", describe_case(case),
                self.outcome.describe(),
                f"ran: {run.device} precision={run.inference_precision} primitive={run.primitive_type} "
                f"op runtimePrecision={run.runtime_precision} outputPrecisions={run.output_precision} "
                f"OpenVINO {run.openvino_version}",
                *filter(None, [post_ops.fusion_line(run.extra.get("post_ops"))]),
                f"IR: {self.outcome.ir.xml_path}", *self._per_group_lines(), *self._repro_lines(repro_start)])
        if self.status in ("crashed", "hung"):
            return "\n".join([f"{head}: the OpenVINO worker {self.failure.status} "
                              f"(isolated run, time limit {self.timeout:g} s)",
                              f"case: {case.source}", describe_case(case), self.failure.describe(),
                              *self._repro_lines(repro_start)])
        if self.status in ("rejected", "untrustworthy"):
            what = ("OpenVINO rejects a model the spec allows" if self.status == "rejected"
                    else "untrustworthy item: the reference cannot tell right from wrong")
            return "\n".join([f"{head}: {what}", f"case: {case.source}", describe_case(case), self.message,
                              *self._per_group_lines(), *self._repro_lines(repro_start)])
        return ""

    def _per_group_lines(self) -> list[str]:
        return [] if self.per_group is None else [self.per_group.describe()]

    def _repro_lines(self, start: Path | str | None) -> list[str]:
        if self.repro is None:
            return []
        from . import repro   # only for failing items
        from .render import DATA_INPUT_NAME
        bundle = Path(relative_path(self.repro, start or Path.cwd()))
        environment = repro.kernel_environment(self.target)
        return [f"repro bundle: {bundle}/", *(f"reproduce: {line}" for line in
                                               repro.commands(bundle, self.target, DATA_INPUT_NAME, environment))]


def item_ending(result: ItemResult | None, policy: ItemPolicy) -> tuple[str, str | None]:
    """The report outcome (``report.OUTCOMES``) and reason of an item a driver other than pytest ran
    (``result`` None: skipped by ``policy``), as the plugin's pytest mapping ends it: an expected
    failure counts only when it is of the registered kind (strict: passing is ``xpassed``), a worker
    failure is ``crashed``/``hung`` whatever was registered otherwise."""
    if result is None:
        return "skipped", f"Skipped: {policy.skip}"
    if result.status == "unavailable":
        return "skipped", f"Skipped: {result.message}"
    registered = policy.registered_failure
    if registered is not None and result.registry_conflict is None:
        if result.passed:   # an intermittent entry's pass is a pass, as pytest's non-strict XPASS
            return ("xpassed", f"[XPASS(strict)] {policy.reason}") if policy.strict else ("passed", policy.reason)
        if REGISTERED_STATUS[registered] == result.status:
            return "xfailed", policy.reason
    if result.passed:
        return "passed", None
    return (result.status if result.status in ("crashed", "hung") else "failed"), result.explain()


def report_environment(records, targets: list[Target]) -> dict:
    """The report's ``environment`` (``report.environment``: OpenVINO's build string as the items
    recorded it, targets, Python, CPU)."""
    return reporting.environment(records, [target.id for target in targets])


@dataclass(frozen=True)
class Planned:
    """An item a driver will check later in this process (``RunSession.run_item``'s ``upcoming``);
    ``registered_failure``: the expected-failure registry's ``fails`` for it, if any."""

    case: Case
    target: Target
    registered_failure: str | None = None


# Batch members whose oracle is computed as soon as the batch's outputs are in (``RunSession._look_ahead``):
# up to this many output elements each (float64 output and magnitude: 1 MiB), so that what is held
# ahead stays small; a larger member is compared when its item comes.
LOOK_AHEAD_MAX_ELEMENTS = 1 << 16

# Registered failures that run alone, never in a batch: a known crash or hang would cost every
# batch holding it a bisection (and a crash in-process ends the run); a known compile error
# likewise (about 2 log2(size) extra compiles each time).
RUN_ALONE = ("crashed", "hung", "error")

# Batches held formed and not looked ahead yet, at most (their outputs are kept): also what
# ``RunSession.start`` submits before the first item, which the lane compiles while torch is
# imported (a batch of 32 small members compiles and infers in ~0.15 s).
BATCHES_HELD = 8
# Formed batches unfinished on the lane that an item tops up to: with one batch formed ahead at a
# time, the lane sat idle while the main thread compared (docs/performance.md, "Session 5").
LANE_DEPTH = 2


def _batchable(planned: Planned) -> bool:
    """An item that may run in a batch: it has a ``batch_key`` and is not registered to run alone."""
    return planned.registered_failure not in RUN_ALONE and batch_key(planned.case, planned.target) is not None


class RunSession:
    """Settings of one run and what it keeps between items: the oracle's results, reused while
    consecutive items share a case (the same case on other targets), and the results of batches.

    The pytest plugin drives one per process, the CLI's ``run`` one per command: ``run_item``
    checks one item and ends it as an ``ItemResult`` (repro bundle of a failing item under
    ``repro_dir``, every output into the result bundle ``results_dir`` when given, the report
    record's fields with paths relative to ``root`` and the repro paths to ``report_dir``).
    ``check`` is ``api.check`` with the session's settings, ``check_per_group`` the per-group
    diagnosis of a failing grouped item; every inference goes through ``_run``.

    With ``batch_size`` > 1, ``check`` runs an item in one model with up to ``batch_size - 1``
    of the items it is told come next (``batch.run_batch``) and keeps their results until they
    are checked.

    ``overlap`` (default: when batching and without the performance view, whose timings must not
    share the machine): every OpenVINO call goes through a ``lane.Lane``, a background thread, and
    the session works ahead on it: the next batch compiles while this one's items are compared,
    and as soon as a batch's outputs are in, its small members' oracles are computed and compared
    (``_look_ahead``), so that the per-case re-run of a member failing inside the batch and its
    per-group check are already running when the item comes. What an item ends with is what it
    would end with without the lane.
    """

    def __init__(self, ir_dir: Path | str = DEFAULT_IR_DIR, isolate: bool = True,
                 timeout: float = DEFAULT_TIMEOUT, *, repro_dir: Path | str | None = None,
                 results_dir: Path | str | None = None, root: Path | str = ".",
                 report_dir: Path | str | None = None, perf_settings: perf.PerfSettings | None = None,
                 batch_size: int = 1, overlap: bool | None = None):
        self.ir_dir, self.isolate, self.timeout = Path(ir_dir), isolate, timeout
        self.perf_settings = perf_settings   # None: no performance view (pytest --perf)
        self.batch_size = max(1, int(batch_size))
        if overlap is None:
            overlap = self.batch_size > 1 and perf_settings is None
        self._lane = Lane() if overlap else None
        # (case id, target id) -> batch.MemberResult, or (future of run_batch's list, index) on a lane
        self._batched: dict[tuple[str, str], object] = {}
        self._batch_inputs: dict[str, Inputs] = {}          # case id -> the first draw its batches ran on
        self._ahead: dict[str, tuple] = {}                  # case id -> (inputs, steps) prepared ahead
        self._outcomes: dict[tuple[str, str], Outcome] = {}   # its batch's outcome, compared ahead
        self._alone: dict[tuple[str, str], Future] = {}       # its per-case re-run, submitted ahead
        self._groups: dict[tuple[str, str], tuple] = {}       # (future of check_per_group_together, index)
        self._formed: list[Future] = []                       # batches on the lane, not looked ahead yet
        self.repro_dir = Path(repro_dir) if repro_dir is not None else Path("reports") / "repro"
        self.results_dir = Path(results_dir) if results_dir is not None else None
        self.root = Path(root)
        self.report_dir = Path(report_dir) if report_dir is not None else self.root
        self._cached: tuple | None = None  # (case id, inputs, prepare(case) or None when streamed)
        self._oracle_recorded = False      # the oracle's time is on the record of the case's first item

    def prepared(self, case: Case) -> tuple[Inputs, tuple[Step, ...] | None]:
        """Inputs and the oracle's steps (``prepare``), reused while consecutive items share a case.

        Streamed (full-size) cases get no whole reference (steps ``None``): ``check``
        computes it slab by slab. The previous case's arrays are dropped first.
        """
        if self._cached is None or self._cached[0] != case.id:
            self._cached = None
            if case.id in self._ahead:
                self._cached = (case.id, *self._ahead.pop(case.id))
            elif streamed(case) and not case.dynamic:
                self._cached = (case.id, make_inputs(case), None)
            else:
                steps = prepare(case, self._settled(case))
                self._cached = (case.id, steps[0].inputs, steps)
            self._oracle_recorded = False   # the first item using it pays for (and records) the oracle
        return self._cached[1], self._cached[2]

    def _run(self, ir: RenderedIR, sequence: list[dict[str, np.ndarray]], target: Target, *,
             isolate: bool = False, timeout: float = DEFAULT_TIMEOUT, python: str | None = None) -> RunResult:
        """The runtime stage of every check this session makes (``run_stage``), on the lane if any."""
        return self._on_lane(run_stage, ir, sequence, target, isolate=isolate, timeout=timeout, python=python)

    def _on_lane(self, function, *args, **kwargs):
        """``function(*args, **kwargs)``, on the lane when there is one (it calls OpenVINO)."""
        if self._lane is not None:
            return self._lane.call(function, *args, **kwargs)
        return function(*args, **kwargs)

    def close(self) -> None:
        """Stop the lane (what was submitted ahead for items that will not run is dropped)."""
        if self._lane is not None:
            self._lane.close()

    def check(self, case: Case, target: Target, *, force_isolation: bool = False,
              progress: Callable[[str], None] | None = None, registered_failure: str | None = None,
              upcoming: Callable[[], Iterable[Planned]] | None = None) -> Outcome:
        """``check`` of ``case`` on ``target`` with the session's inputs, oracle and settings;
        ``force_isolation``: in a worker even when the session is not isolated (an item known to crash).

        ``upcoming()``: the items this process will check next, in order (``Planned``). When
        batching, the item runs in one model with the next compatible ones (same ``batch_key``,
        not ``RUN_ALONE``), or its result comes from an earlier item's batch. An item that fails
        inside a batch is run again alone: the alone run's outcome stands, unless it passes; then
        the item still fails, and its ``note`` and ``run.extra["batch"]`` (``failed_alone``:
        False) say that it fails only inside a batch.
        """
        inputs, steps = self.prepared(case)
        alone = dict(isolate=self.isolate or force_isolation, timeout=self.timeout, progress=progress,
                     runner=self._run)
        batched = None
        if not force_isolation and registered_failure not in RUN_ALONE:
            batched = self._batched_result(case, target, inputs, steps, upcoming)
        key = (case.id, target.id)
        if batched is None:
            ahead = self._alone.pop(key, None)
            if ahead is not None and not force_isolation:
                return ahead.result()
            return check(case, target, self.ir_dir, inputs=inputs, steps=steps, **alone)
        outcome = self._outcomes.pop(key, None) or check(case, target, self.ir_dir, inputs=inputs, steps=steps,
                                                         runner=given_result(batched))
        if outcome.verdict.passed or "batch" not in outcome.run.extra:   # passed, or already ran alone
            return outcome
        size = outcome.run.extra["batch"]["size"]
        ahead = self._alone.pop(key, None)
        by_itself = ahead.result() if ahead is not None else check(case, target, self.ir_dir, inputs=inputs,
                                                                     steps=steps, **alone)
        if not by_itself.verdict.passed:
            return replace(by_itself, run=with_batch_record(by_itself.run, size=size, failed_alone=True))
        return replace(outcome, run=with_batch_record(outcome.run, failed_alone=False),
                       note=f"fails only inside a batch: in one model with {size - 1} other case(s) the output "
                            f"differs; run alone (its own IR) it passes: context-dependent behaviour")

    def _batched_result(self, case: Case, target: Target, inputs: Inputs, steps, upcoming):
        """This item's result from a batch (running one now with the next compatible items), or
        None when it runs alone. On a lane, the first item to use a batch's results starts its
        look-ahead (``_look_ahead``), and every item tops up the batches ahead (``_form_next_batch``)."""
        key = (case.id, target.id)
        if key not in self._batched:
            group = batch_key(case, target)
            if self.batch_size <= 1 or steps is None or group is None or upcoming is None:
                return None
            if not self._form_batch(member(case, inputs, [step.inputs for step in steps]), target, upcoming):
                return None
        result = self._batched.pop(key)
        if not isinstance(result, tuple):
            return result
        future, index = result
        diagnoses: list = []
        self._form_next_batch(upcoming, current=future)   # before waiting on it: the lane stays busy
        if not getattr(future, "reached", False):   # the first of its items to come
            future.reached = True
            if future in self._formed:
                self._look_ahead(future, diagnoses)   # waits for its outputs; this item's key is no longer in _batched
        members = future.result()
        for later in [later for later in self._formed if later.done()]:
            self._look_ahead(later, diagnoses)   # a later batch already done: its re-runs can start now
        self._submit_per_group(diagnoses)
        return members[index]

    def start(self, upcoming: Callable[[], Iterable[Planned]], batches: int = BATCHES_HELD) -> None:
        """Before the first item (``upcoming()``: every item, in order): submit the first ``batches``
        batches of static items to the lane. Their members are first draws (``_drawn``), which need
        no torch, so they render, compile and infer while the caller imports torch (~1.3 s, single
        threaded: docs/performance.md). Nothing without a lane."""
        if self._lane is None:
            return
        tried: set[tuple[str, str]] = set()
        for _ in range(batches):
            first = None
            for planned in upcoming():
                key = (planned.case.id, planned.target.id)
                if key not in self._batched and key not in tried and not sequence_kind(planned.case) \
                        and _batchable(planned):
                    first = planned
                    break
            if first is None:
                return
            tried.add((first.case.id, first.target.id))
            self._form_batch(member(first.case, self._drawn(first.case)), first.target, upcoming)

    def _form_batch(self, first: Member, target: Target, upcoming: Callable[[], Iterable[Planned]]) -> bool:
        """Run ``first`` with the next items of ``upcoming`` that can share its model (same
        ``batch_key``, not ``RUN_ALONE``, not batched already) as one batch, on the lane if any
        (results kept in ``_batched``); False when nothing can join it."""
        group = batch_key(first.case, target)
        chosen, seen = [first], {(first.case.id, target.id)}
        for planned in upcoming():
            if len(chosen) >= self.batch_size:
                break
            other = (planned.case.id, planned.target.id)
            if other in seen or other in self._batched or planned.target != target \
                    or planned.registered_failure in RUN_ALONE or batch_key(planned.case, planned.target) != group:
                continue
            seen.add(other)
            chosen.append(member(planned.case, self._drawn(planned.case)))
        if len(chosen) == 1:
            return False
        if self._lane is None:
            results = run_batch(chosen, target, self.ir_dir, isolate=self.isolate, timeout=self.timeout)
            for planned, result in zip(chosen, results):
                self._batched[(planned.case.id, target.id)] = result
            return True
        future = self._lane.submit(run_batch, chosen, target, self.ir_dir, isolate=self.isolate,
                                   timeout=self.timeout)
        future.members, future.target = chosen, target
        self._formed.append(future)
        for index, planned in enumerate(chosen):
            self._batched[(planned.case.id, target.id)] = (future, index)
        return True

    def _form_next_batch(self, upcoming: Callable[[], Iterable[Planned]], current: Future | None = None) -> None:
        """Keep the lane busy: submit batches of the first upcoming batchable items not in one yet
        while fewer than ``LANE_DEPTH`` formed batches are unfinished and fewer than ``BATCHES_HELD``
        wait to be looked ahead (``current``, the batch of the item asking, not counted). They
        compile while the main thread compares."""
        held = [formed for formed in self._formed if formed is not current]
        unfinished = sum(not formed.done() for formed in held)
        if unfinished >= LANE_DEPTH or len(held) >= BATCHES_HELD:
            return
        alone, diagnoses, formed = 0, [], len(held)
        for planned in upcoming():
            key = (planned.case.id, planned.target.id)
            if key in self._batched or key in self._alone:
                continue
            if not _batchable(planned):
                if alone < self.batch_size and self._check_alone_ahead(planned, diagnoses):
                    alone += 1
                continue
            self._submit_per_group(diagnoses)   # before the batch: their items come first
            diagnoses = []
            if self._form_batch(member(planned.case, self._drawn(planned.case)), planned.target, upcoming):
                unfinished, formed = unfinished + 1, formed + 1
                if unfinished >= LANE_DEPTH or formed >= BATCHES_HELD:
                    return
        self._submit_per_group(diagnoses)

    def _drawn(self, case: Case) -> Inputs:
        """``case``'s inputs for a batch member: its settled inputs when this session has them (prepared
        ahead, or the current case), else its first draw (``inputs.first_draw``: no torch), drawn once
        and kept until its item settles it (``_settled``)."""
        if case.id in self._ahead:
            return self._ahead[case.id][0]
        if self._cached is not None and self._cached[0] == case.id:
            return self._cached[1]
        if case.id not in self._batch_inputs:
            self._batch_inputs[case.id] = first_draw(case)
        return self._batch_inputs[case.id]

    def _settled(self, case: Case) -> Inputs | None:
        """The first draw ``case``'s batches ran on, settled (``inputs.settled``: what ``make_inputs``
        gives) and no longer kept; None when no batch drew it. When the draw was redrawn, the
        batches' results for ``case`` are dropped: they are for other inputs, so its items run
        again, with the settled inputs."""
        drawn = self._batch_inputs.pop(case.id, None)
        if drawn is None:
            return None
        inputs = settled(case, drawn)
        if redrawn(drawn, inputs):
            for key in [key for key in self._batched if key[0] == case.id]:
                del self._batched[key]
        return inputs

    def _submit_alone(self, case: Case, target: Target, steps: tuple[Step, ...]) -> None:
        """``check`` of ``case`` alone, submitted to the lane (its item takes the outcome)."""
        self._alone[(case.id, target.id)] = self._lane.submit(
            check, case, target, self.ir_dir, inputs=steps[0].inputs, steps=steps, isolate=self.isolate,
            timeout=self.timeout)

    def _check_alone_ahead(self, planned: Planned, diagnoses: list) -> bool:
        """Submit the whole check of an upcoming item that runs alone to the lane (its oracle
        computed now, kept for it); when it is registered as rejected, its per-group check joins
        ``diagnoses`` (``_submit_per_group``). False for what is not checked ahead: items in a
        worker of their own (registered to crash or hang), streamed and large ones (their arrays
        are not held ahead)."""
        case, target = planned.case, planned.target
        if planned.registered_failure in ("crashed", "hung") or streamed(case) \
                or math.prod(case.geometry().output_shape) > LOOK_AHEAD_MAX_ELEMENTS:
            return False
        if case.id not in self._ahead:
            steps = prepare(case, self._settled(case))
            self._ahead[case.id] = (steps[0].inputs, steps)
        inputs, steps = self._ahead[case.id]
        self._submit_alone(case, target, steps)
        if planned.registered_failure == "error" and len(steps) == 1:
            diagnoses.append(((case.id, target.id), target, (case, inputs, steps[0].reference)))
        return True

    def _submit_per_group(self, diagnoses: list) -> None:
        """Submit the per-group checks of ``diagnoses`` (((case id, target id), target, (case, inputs,
        reference)) of items failing in a batch or registered as rejected) to the lane: one
        ``check_per_group_together`` job per target, every slice of its items in one model where
        they can share one (each model is a compile)."""
        by_target: dict[Target, list] = {}
        for key, target, item in diagnoses:
            by_target.setdefault(target, []).append((key, item))
        for target, requests in by_target.items():
            together = self._lane.submit(check_per_group_together, [item for _, item in requests], target,
                                         self.ir_dir, isolate=self.isolate, timeout=self.timeout)
            for index, (key, _) in enumerate(requests):
                self._groups[key] = (together, index)

    def _look_ahead(self, future: Future, diagnoses: list) -> None:
        """A batch's outputs are in: compare its small members whose items have not come yet (still
        in ``_batched``; their oracles computed now, kept for their items) and submit to the lane, for
        each that fails inside the batch, its per-case re-run; its per-group check joins
        ``diagnoses`` (the caller submits those of every batch it looked ahead at as one job:
        ``_submit_per_group``). They run while the items before them are checked. A member whose
        look-ahead raises (an untrustworthy reference, a rejected model) is left to its own item,
        which meets the same thing."""
        self._formed.remove(future)
        target = future.target
        for planned, result in zip(future.members, future.result()):
            key = (planned.case.id, target.id)
            if key not in self._batched or "batch" not in getattr(result, "extra", {}) \
                    or math.prod(planned.case.geometry().output_shape) > LOOK_AHEAD_MAX_ELEMENTS:
                continue
            if planned.case.id not in self._ahead:
                steps = prepare(planned.case, self._settled(planned.case))
                self._ahead[planned.case.id] = (steps[0].inputs, steps)
            steps = self._ahead[planned.case.id][1]
            if key not in self._batched:   # redrawn (``_settled``): its batch ran other inputs
                continue
            try:
                outcome = check(planned.case, target, self.ir_dir, inputs=steps[0].inputs, steps=steps,
                                runner=given_result(result))
            except (Untrustworthy, RuntimeRejected, TargetUnavailable, WorkerFailed):
                continue
            self._outcomes[key] = outcome
            if outcome.verdict.passed:
                continue
            self._submit_alone(planned.case, target, steps)
            if len(steps) == 1:
                diagnoses.append((key, target, (planned.case, steps[0].inputs, steps[0].reference)))

    def measure_performance(self, outcome: Outcome, target: Target, *, force_isolation: bool = False) -> dict | None:
        """The ``perf`` record of a passed item (``perf.measure``: the single-case model, the session's
        thread count, where the check ran: ``force_isolation`` as for ``check``), or None when the session
        has no performance view or the item did not pass. After the verdict: no timing enters it."""
        if self.perf_settings is None or not outcome.verdict.passed:
            return None
        feed = feeds(outcome.ir, outcome.steps)[0] if outcome.steps else None
        return perf.measure(outcome, target, self.perf_settings, feed, isolate=self.isolate or force_isolation,
                            timeout=self.timeout)

    def check_per_group(self, case: Case, target: Target) -> GroupCheck | None:
        """The per-group diagnosis of a failing grouped item (``check_per_group``); never raises:
        a problem of the diagnosis itself is its note."""
        inputs, steps = self.prepared(case)
        whole = steps is not None and len(steps) == 1
        ahead = self._groups.pop((case.id, target.id), None)
        try:
            if ahead is not None:
                together, index = ahead
                return together.result()[index]
            # On the lane, as a whole: its batched slices call OpenVINO too.
            return self._on_lane(check_per_group, case, target, steps[0].inputs if whole else inputs,
                            steps[0].reference if whole else None, self.ir_dir,
                            isolate=self.isolate, timeout=self.timeout, batched=self.batch_size > 1)
        except Exception as error:   # the diagnosis must never hide the failure it explains
            return GroupCheck(ops.get(case.op).sibling or "-", 0, None, note=f"{type(error).__name__}: {error}")

    def run_item(self, case: Case, target: Target, *, registered_failure: str | None = None,
                 progress: Callable[[str], None] | None = None,
                 upcoming: Callable[[], Iterable[Planned]] | None = None) -> ItemResult:
        """Check ``case`` on ``target`` and end it as an ``ItemResult``; never raises for how the
        device behaves (a mismatch, a rejected model, a crashed or hung worker, an unavailable target).

        ``registered_failure``: the registry's ``fails`` for this item; an item registered to crash
        or hang runs in a worker even when the session is not isolated (in-process, the known crash
        would end the run), and a worker failing the other way is a ``registry_conflict``.
        ``upcoming``: the items this process checks next, for batching (``check``).
        """
        inputs, steps = self.prepared(case)
        # The oracle's time is recorded on the item that computed it; later targets reuse it.
        oracle_seconds = 0.0
        if steps is not None and not self._oracle_recorded:
            self._oracle_recorded = True
            oracle_seconds = sum(step.reference.seconds for step in steps)
        result = ItemResult(case, target, "passed", timeout=self.timeout)
        try:
            outcome = self.check(case, target, force_isolation=registered_failure in ("crashed", "hung"),
                                 progress=progress, registered_failure=registered_failure, upcoming=upcoming)
        except TargetUnavailable as reason:
            result.status, result.message = "unavailable", str(reason)
            return result
        except RuntimeRejected as error:
            # A bundle all the same: its reproduce.py shows OpenVINO's error (the IR is cached by digest).
            result.status, result.message = "rejected", str(error)
            result.ir = render(case, inputs, self.ir_dir)
            result.repro = self._write_repro(case, target, inputs, steps, result.ir, outcome="rejected",
                                             message=str(error))
            result.record = self._timing_record(target, error.seconds, oracle_seconds, result.ir, result.repro)
            result.per_group = self.check_per_group(case, target)
            return result
        except Untrustworthy as problem:
            result.status, result.message = "untrustworthy", str(problem)
            result.record = self._timing_record(target, {}, oracle_seconds)
            return result
        except WorkerFailed as failed:
            # The IR is cached by digest: rendering again returns the file the worker read.
            failure = failed.failure
            result.status, result.message, result.failure = failure.status, failure.describe(), failure
            result.ir = render(case, inputs, self.ir_dir)
            result.repro = self._write_repro(case, target, inputs, steps, result.ir, outcome=failure.status,
                                             message=failure.describe())
            result.record = {"repro": self._relative(result.repro, self.report_dir),
                             "run": {"ir": self._relative(result.ir.xml_path), "ir_digest": result.ir.digest,
                                     **({"isa_cap": target.isa} if target.isa else {})}, "verdict": {}}
            if registered_failure in ("crashed", "hung") and failure.status != registered_failure:
                result.registry_conflict = (f"registered as '{registered_failure}', but the worker "
                                            f"{failure.status}: {failure.describe()}")
            return result
        result.outcome, result.ir, result.message = outcome, outcome.ir, outcome.describe()
        result.status = "passed" if outcome.verdict.passed else "failed"
        # The step shown (and bundled): the first failing inference, else the last (``check``);
        # streamed items have no whole reference (None).
        chosen = outcome.step_index
        expected = steps[chosen].reference if steps else None
        step_inputs = steps[chosen].inputs if steps else inputs
        output = outcome.run.output if not steps or len(steps) == 1 else outcome.run.outputs[chosen]
        verdict = outcome.verdict
        if not verdict.passed:
            result.repro = self._write_repro(case, target, inputs, steps, outcome.ir, chosen, actual=output,
                                             message=outcome.describe(), tolerance=verdict.tolerance,
                                             verdict={"mismatches": verdict.mismatches, "total": verdict.total})
        result.perf = self.measure_performance(outcome, target,
                                               force_isolation=registered_failure in ("crashed", "hung"))
        if self.results_dir is not None:
            bundles.write_item(self.results_dir, case_id=case.id, op=case.op, target=target,
                               inputs=step_inputs, ir_digest=outcome.ir.digest,
                               run=replace(outcome.run, output=output),
                               bound=None if expected is None else bundles.tolerance_bound(
                                   expected.output, expected.magnitude, verdict.tolerance),
                               passed=verdict.passed, perf=result.perf)
        result.record = reporting.outcome_fields(
            outcome, target, expectations.target_features(target.isa),
            repro=self._relative(result.repro, self.report_dir) if result.repro else None,
            ir=self._relative(outcome.ir.xml_path), oracle_seconds=outcome.oracle_seconds or oracle_seconds)
        if not verdict.passed:
            result.per_group = self.check_per_group(case, target)
        return result

    def _relative(self, path: Path | str, start: Path | None = None) -> str:
        return relative_path(path, start or self.root)

    def _write_repro(self, case: Case, target: Target, inputs: Inputs, steps: tuple[Step, ...] | None,
                     ir: RenderedIR, index: int = 0, **details) -> Path:
        """The repro bundle of a failing item: step ``index``'s inputs (every runtime input the IR
        declares), its reference, and ``details`` (``repro.write_bundle``'s keywords)."""
        from . import repro   # only for failing items
        if steps:
            step = steps[index]
            step_case, step_inputs, expected = case.at_data_shape(step.data_shape), step.inputs, step.reference
        else:   # streamed: no whole reference
            step_case, step_inputs, expected = case, inputs, None
        # The bundle feeds what the IR declares (RenderedIR.feed of this step's inputs).
        return repro.write_bundle(self.repro_dir, step_case, step_inputs, expected, target, ir, **details)

    def _timing_record(self, target: Target, seconds: dict, oracle_seconds: float,
                       ir: RenderedIR | None = None, repro_path: Path | None = None) -> dict:
        """The record of an item that ended before a verdict: the work it cost (for the overhead
        figures), its IR and its repro bundle."""
        timing = {key: round(value, 6) for key, value in seconds.items()}
        if target.isa:
            timing["isa_cap"] = target.isa
        if oracle_seconds:
            timing["oracle_seconds"] = round(oracle_seconds, 6)
        if ir is not None:
            timing.update(ir=self._relative(ir.xml_path), ir_digest=ir.digest)
        return {"repro": self._relative(repro_path, self.report_dir) if repro_path else None, "run": timing,
                "verdict": {}}


# --- the per-group decomposition of a failing grouped item --------------------------------

MAX_DECOMPOSED_GROUPS = 64   # one compile per group: beyond this the decomposition is not tried


@dataclass(frozen=True)
class GroupCheck:
    """A grouped case re-run as its ungrouped sibling op, one subgraph per group on that group's channel
    slice, the outputs concatenated along the channels and compared with the same reference.
    ``batch``: the slices ran as one model of that many subgraphs (``batch.run_batch``); 0: one model each."""

    sibling: str                    # the ungrouped op (Convolution, ConvolutionBackpropData)
    groups: int
    passed: bool | None             # None: not tried (``note`` says why)
    verdict: Verdict | None = None
    error: str | None = None        # the sibling's compile/infer error, if it failed that way
    note: str | None = None
    batch: int = 0

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
        if self.batch:
            record["batch"] = self.batch
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
                    timeout: float = DEFAULT_TIMEOUT,
                    runner: Callable[..., RunResult] | None = None, *, batched: bool = True) -> GroupCheck | None:
    """Re-run a grouped ``case`` as its sibling op per group on ``target`` (``group_slices``) and
    compare the concatenation with ``expected``, the grouped case's reference; None for an op
    without a sibling. Used when a grouped item fails: does the ungrouped op get it right?

    ``batched``: the slices run as one model (``batch.run_batch``: one compile for all groups; a
    slice OpenVINO rejects is bisected to itself) when they can share one (``batch_key``); else,
    or with ``batched=False``, each slice is its own model run by ``runner`` (``run_stage``).
    The slices are a diagnosis, not cases of record: they are never re-run alone.
    """
    if batched:
        return check_per_group_together([(case, inputs, expected)], target, ir_dir, isolate, timeout)[0]
    not_tried = _per_group_not_tried(case, expected)
    if not_tried is not False:
        return not_tried
    results = []
    for sub, sub_inputs in group_slices(case, inputs):   # one model each: the first failure ends the check
        results.append(_run_slice(sub, sub_inputs, target, ir_dir, isolate, timeout, runner or run_stage))
        if not isinstance(results[-1], RunResult):
            break
    return _group_check(case, inputs, expected, results, batch=0)


def check_per_group_together(items: list[tuple[Case, Inputs, Reference]], target: Target,
                             ir_dir: Path | str = DEFAULT_IR_DIR, isolate: bool = False,
                             timeout: float = DEFAULT_TIMEOUT) -> list[GroupCheck | None]:
    """``check_per_group`` of several failing items ``(case, inputs, expected)``, every slice of all
    of them that can share a model (equal ``batch_key``) in one model (``batch.run_batch``); a
    slice OpenVINO rejects is bisected to itself and only its item's check says so. An item whose
    slices cannot share one runs them one model each."""
    checks: list[GroupCheck | None] = [None] * len(items)
    shared: dict[tuple, list[tuple[int, list]]] = {}   # batch key -> [(item index, its slices)]
    alone: list[int] = []                              # items whose slices run one model each
    for index, (case, inputs, expected) in enumerate(items):
        not_tried = _per_group_not_tried(case, expected)
        if not_tried is not False:
            checks[index] = not_tried
            continue
        parts = group_slices(case, inputs)
        keys = {batch_key(sub, target) for sub, _ in parts}
        if len(keys) == 1 and None not in keys:
            shared.setdefault(keys.pop(), []).append((index, parts))
        else:
            alone.append(index)
    for group in shared.values():
        if len(group) == 1 and len(group[0][1]) == 1:   # one slice: a model of its own, no batch
            alone.append(group[0][0])
            continue
        members = [member(sub, sub_inputs) for _, parts in group for sub, sub_inputs in parts]
        results = run_batch(members, target, ir_dir, isolate=isolate, timeout=timeout)
        start = 0
        for index, parts in group:
            case, inputs, expected = items[index]
            checks[index] = _group_check(case, inputs, expected, results[start:start + len(parts)],
                                         batch=len(members))
            start += len(parts)
    for index in alone:
        case, inputs, expected = items[index]
        checks[index] = check_per_group(case, target, inputs, expected, ir_dir, isolate, timeout, batched=False)
    return checks


def _per_group_not_tried(case: Case, expected: Reference | None) -> GroupCheck | None | bool:
    """None for an op without a sibling, a ``GroupCheck`` saying why the check is not tried, or
    False: it can be tried."""
    op = ops.get(case.op)
    if op.sibling is None:
        return None
    groups = op.channels(case.kernel_shape)[0]
    if case.dynamic or expected is None:
        return GroupCheck(op.sibling, groups, None, note="dynamic or streamed case")
    if groups > MAX_DECOMPOSED_GROUPS:
        return GroupCheck(op.sibling, groups, None, note=f"more than {MAX_DECOMPOSED_GROUPS} groups")
    return False


def _group_check(case: Case, inputs: Inputs, expected: Reference, results: list, batch: int) -> GroupCheck:
    """The per-group verdict from the slices' results (``run_batch``'s kinds: a ``RunResult``, or
    the failure a slice met): their outputs concatenated along the channels against ``expected``."""
    op = ops.get(case.op)
    groups = op.channels(case.kernel_shape)[0]
    for result in results:
        if isinstance(result, WorkerFailure):
            return GroupCheck(op.sibling, groups, False, error=result.describe(), batch=batch)
        if isinstance(result, (RuntimeRejected, TargetUnavailable)):
            return GroupCheck(op.sibling, groups, False, error=str(result), batch=batch)
    output = np.concatenate([result.output for result in results], axis=1)
    magnitude = expected.magnitude
    tolerance = _tolerance(case, results[-1], inputs, expected.geometry.accumulation_length,
                           float(magnitude.max()) if magnitude.size else 0.0)
    verdict = compare(expected.output, magnitude, output, tolerance)
    return GroupCheck(op.sibling, groups, verdict.passed, verdict, batch=batch)


def _run_slice(sub: Case, sub_inputs: Inputs, target: Target, ir_dir: Path | str, isolate: bool, timeout: float,
               runner: Callable[..., RunResult]):
    """One group slice as its own model: its ``RunResult``, or the failure it met (as ``run_batch`` gives)."""
    ir = render(sub, sub_inputs, ir_dir)
    try:
        return runner(ir, [ir.feed(sub_inputs)], target, isolate=isolate, timeout=timeout)
    except WorkerFailed as failed:
        return failed.failure
    except (RuntimeRejected, TargetUnavailable) as error:
        return error


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
