"""Stage 3 for many cases: run a batch of cases on one target as ONE model.

Compiling a model costs ~10 ms per small layer; the same layers as independent
Parameter -> op -> Result subgraphs of one model cost ~0.7 ms each
(docs/performance.md, "Batched compilation"). ``run_batch`` renders the members
as one IR (``render.render_batch``: one subgraph per member, names prefixed
``m<index>_``), compiles it once, infers once with every member's feed, and
splits the outputs back into one ``RunResult`` per member, each with its OWN op
node's primitive type and precisions from the runtime model, and, for a member
with post-ops, the same record of which of them fused into the op's node as a
solo run gives (``runtime.fusion`` over that member's own layers only).

Cases whose outputs need a sequence of inferences (dynamic data dims: one per
``infer_shapes`` entry; a runtime output_shape, fed with the data, makes the
output dims dynamic too) batch among themselves: inference i feeds every member
its feed i, and each member's ``RunResult.outputs`` holds its own outputs, one
per feed, as ``runtime.run`` gives them. Members with fewer feeds than the
longest are fed their last feed again and those extra outputs are dropped
(rather than keying batches by the number of feeds, which would split the
fuzzing campaign's batches by 2, 3, 4 infer shapes): a member's own subgraph
still sees exactly its sequence of shapes, in order, and only what follows its
last output is added. Static and sequence members never share a model: so every
static batch stays exactly what it was (whether a static subgraph beside dynamic
ones gets its per-case primitive is not measured), and a static member is not
inferred once per feed of the longest sequence.

What a batch must not change:

- **A failure costs only its culprit.** A batch that OpenVINO rejects (compile or
  infer), or whose worker crashes, is split in halves, recursively, until the
  culprit stands alone; a lone member runs as a per-case run does (its own IR,
  ``runtime.run`` / ``worker.run_in_worker``), so its result is exactly the
  per-case ``RunResult`` / ``RuntimeRejected`` / ``TargetUnavailable`` /
  ``WorkerFailure``. A batch that hangs (worker time limit) is not bisected
  (each half could cost another time limit): every member runs alone. A batch
  error is never classified (unavailable target or rejected model): the lone
  runs say which, as ``runtime.run`` does.
- **Verdicts are per case.** The caller compares each member's output with its
  own reference; a member that fails inside a batch is re-run alone
  (``api.RunSession``), and one that passes alone is reported as failing only
  inside a batch.
- **What is batchable** (``batch_key``): cases not streamed (full-size cases gain
  nothing and would hold several large outputs at once), up to
  ``MAX_MEMBER_ELEMENTS`` at every inference; static and sequence (dynamic /
  runtime output_shape) cases apart; with or without post-ops (a member's post-op
  layers and its ``sum`` addend Parameter carry its prefix). Items the registry
  marks as crashing or hanging run alone (the caller leaves them out), so a known
  crash never costs a batch its bisection.

Time is apportioned so that per-item figures still add up to what OpenVINO
spent: read + compile seconds in equal shares (compile cost per small layer is
about constant), infer seconds in proportion to each member's multiply-adds
(over its whole sequence).
Per-case latency figures must come from single-case models, not from these.

The public entry is ``run_batch``; the fuzzing campaign and ``api.RunSession``
call it.
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Union

from . import runtime
from .runtime import RunResult, RuntimeRejected, Target, TargetUnavailable
from .worker import DEFAULT_TIMEOUT, HUNG, WorkerFailure

# Members whose data or output hold more elements than this run alone: large layers gain
# nothing from sharing a compile, and a batch would hold all their outputs at once.
MAX_MEMBER_ELEMENTS = 1 << 20

MemberResult = Union[RunResult, RuntimeRejected, TargetUnavailable, WorkerFailure]


@dataclass(frozen=True)
class Member:
    """One case of a batch and its inputs (``inputs.make_inputs``), and the inputs of each of its
    inferences (``inputs.inference_inputs``: one for a static case, one per infer shape for a
    dynamic one; the first is what its IR is rendered with)."""

    case: object                      # case.Case
    inputs: object                    # inputs.Inputs
    sequence: tuple = ()              # inputs.Inputs per inference


def sequence_kind(case) -> bool:
    """True when ``case``'s outputs need a sequence of inferences or dynamic output dims (dynamic
    data dims, a runtime output_shape): such cases batch among themselves (``batch_key``)."""
    return case.dynamic or case.output_shape_input == "parameter"


def batch_key(case, target: Target) -> tuple | None:
    """Cases with equal keys can share one model on ``target``; None: the case runs alone
    (streamed, or larger than ``MAX_MEMBER_ELEMENTS`` at some inference). Static cases and sequence
    ones (``sequence_kind``) get different keys. Post-ops change nothing: their layers carry the
    member's prefix, a ``sum`` addend is one more runtime input of the member, and its fusion record
    is read from its own layers."""
    from .oracle import streamed
    if not case.dynamic and streamed(case):
        return None
    for shape in case.infer_shapes if case.dynamic else (case.data_shape,):
        step = case.at_data_shape(shape) if case.dynamic else case
        if max(math.prod(step.geometry().output_shape), math.prod(step.data_shape)) > MAX_MEMBER_ELEMENTS:
            return None
    if sequence_kind(case):
        return target.id, case.element_type, "sequence"
    return target.id, case.element_type


def member(case, inputs, sequence=None) -> Member:
    """A ``Member`` for ``case`` with ``inputs``; ``sequence``: the inputs of its inferences when
    already made (``api.prepare``'s steps), else ``inputs.inference_inputs(case, inputs)``."""
    from .inputs import inference_inputs
    return Member(case, inputs, tuple(sequence) if sequence is not None else inference_inputs(case, inputs))


def run_batch(members: list[Member], target: Target, ir_dir: Path | str, *, isolate: bool = False,
              timeout: float = DEFAULT_TIMEOUT) -> list[MemberResult]:
    """Run ``members`` (equal ``batch_key``s) on ``target`` as one model; one result per member, in order.

    Each result is the member's ``RunResult`` (``extra["batch"] = {"size": n}``: it ran in a
    model of n members), or, for a member that had to run alone, what a per-case run gives: a
    ``RunResult`` without ``batch``, the ``RuntimeRejected`` / ``TargetUnavailable`` it raised, or
    the ``WorkerFailure``. Never raises for a member's failure. ``isolate`` (or a target that
    needs its own environment): in a worker process, as ``api.check`` runs; ``ir_dir``: where a
    member run alone has its per-case IR rendered (the artefact of record, ``render.render``).
    """
    keys = {batch_key(m.case, target) for m in members}
    if None in keys or len(keys) > 1:
        raise ValueError(f"run_batch: the members' batch_key()s must be equal and not None, got {sorted(map(str, keys))}")
    results: list[MemberResult | None] = [None] * len(members)
    in_worker = isolate or bool(target.environment())
    pending = [list(range(len(members)))]
    while pending:
        indices = pending.pop()
        if len(indices) == 1:
            results[indices[0]] = _run_alone(members[indices[0]], target, ir_dir, in_worker, timeout)
            continue
        outcome = _run_together([members[i] for i in indices], target, in_worker, timeout)
        if isinstance(outcome, list):
            for index, result in zip(indices, outcome):
                results[index] = result
        elif isinstance(outcome, WorkerFailure) and outcome.status == HUNG:
            pending.extend([index] for index in reversed(indices))
        else:   # rejected or crashed: the culprit is in one half (or both)
            half = len(indices) // 2
            pending += [indices[half:], indices[:half]]
    return results


def _run_together(members: list[Member], target: Target, in_worker: bool,
                  timeout: float) -> list[RunResult] | Exception | WorkerFailure:
    """The members as one model: their results, or what stopped the batch."""
    from .render import render_batch
    xml, weights, subgraphs = render_batch([(m.case, m.inputs) for m in members])
    types = {}
    for subgraph in subgraphs:
        types.update((item.name, item.element_type) for item in subgraph.runtime_inputs)
    outputs = [(subgraph.prefix, subgraph.op, subgraph.result) for subgraph in subgraphs]
    work = [_multiply_adds(m.case) for m in members]
    counts = [len(m.sequence) for m in members]
    # Inference i feeds every member its feed i; a member with fewer feeds its last one again (its
    # extra outputs are dropped: module docstring).
    feeds = []
    for index in range(max(counts)):
        feed = {}
        for m, subgraph in zip(members, subgraphs):
            feed.update(subgraph.feed(m.sequence[min(index, len(m.sequence) - 1)]))
        feeds.append(feed)
    # One inference: infer_batch's static form (one feed, no counts).
    arguments = (xml, weights, outputs, feeds[0], types, work, target) if len(feeds) == 1 else \
        (xml, weights, outputs, feeds, types, work, target, counts)
    try:
        if in_worker:
            from . import worker
            outcome = worker.call(infer_batch, *arguments, env=target.environment(), timeout=timeout)
        else:
            outcome = infer_batch(*arguments)
    except (RuntimeRejected, TargetUnavailable, RuntimeError) as error:
        return error
    return outcome


def _run_alone(m: Member, target: Target, ir_dir: Path | str, in_worker: bool, timeout: float) -> MemberResult:
    """A member as a per-case run: its own IR, its own compile."""
    from .render import render
    ir = render(m.case, m.inputs, ir_dir)
    sequence = [ir.feed(inputs) for inputs in m.sequence]
    try:
        if in_worker:
            from .worker import run_in_worker
            return run_in_worker(ir, sequence, target, timeout)
        return runtime.run(ir, sequence, target)
    except (RuntimeRejected, TargetUnavailable) as error:
        return error


def _multiply_adds(case) -> int:
    """The multiply-adds of ``case``'s inferences (every infer shape of a dynamic case)."""
    total = 0
    for step in [case.at_data_shape(shape) for shape in case.infer_shapes] if case.dynamic else [case]:
        geometry = step.geometry()
        total += math.prod(geometry.output_shape) * geometry.accumulation_length
    return max(1, total)


def infer_batch(xml: bytes, weights: bytes, outputs: list[tuple[str, str, str]], feed: dict | list[dict],
                types: dict[str, str], work: list[int], target: Target,
                counts: list[int] | None = None) -> list[RunResult]:
    """Compile the batch IR (``render.render_batch``) for ``target``, infer ``feed`` once (``types``:
    each input's element type), and split the outputs: one ``RunResult`` per member (``outputs``:
    its name prefix, op node's name and Result's name), with its own op node's rt_info, the record
    of where its post-ops ran (``runtime.fusion`` over its own layers, named as in its own IR), the
    read + compile time in equal shares and the infer time in proportion to ``work``. Raises
    ``RuntimeRejected`` / ``TargetUnavailable`` as ``runtime.run`` does (for the whole batch). Runs
    in-process or as a worker job.

    A sequence of inferences: ``feed`` a list of feeds inferred in order on the one compiled model,
    ``counts`` how many of them are each member's (its ``RunResult.outputs``: its outputs of the
    first ``count`` inferences, ``output`` the first, as ``runtime.run`` gives them)."""
    core = runtime.core()
    runtime.require_device(target)
    started = time.perf_counter()
    model = core.read_model(xml, weights)   # from memory: the batch IR is never written to disk
    read_at = time.perf_counter()
    try:
        compiled = core.compile_model(model, target.device, target.config())
    except RuntimeError as error:
        raise RuntimeRejected("compile", runtime._last_line(str(error).strip()), {
            "read_seconds": read_at - started, "compile_seconds": time.perf_counter() - read_at}) from None
    compiled_at = time.perf_counter()
    # The runtime model as compiled, before any inference (as runtime.run reads it).
    nodes = runtime.runtime_nodes(compiled)
    feeds = [feed] if isinstance(feed, dict) else list(feed)
    counts = counts or [1] * len(outputs)
    # Outputs by Result name: a member with post-ops outputs the last post-op's unnamed tensor.
    by_result = {result.get_friendly_name(): index for index, result in enumerate(model.get_results())}
    tensors = [compiled.outputs[by_result[result_name]] for _, _, result_name in outputs]
    produced: list[list] = [[] for _ in outputs]
    request = compiled.create_infer_request()
    for index, one in enumerate(feeds):
        try:
            request.infer(runtime.input_tensors(one, types), **runtime._sharing_inputs(request))
        except RuntimeError as error:
            raise RuntimeRejected("infer", runtime._last_line(str(error).strip()), {
                "read_seconds": read_at - started, "compile_seconds": compiled_at - read_at,
                "infer_seconds": time.perf_counter() - compiled_at}) from None
        for member_outputs, tensor, count in zip(produced, tensors, counts):
            if index < count:   # a member fed its last feed again: that output is not its own
                member_outputs.append(runtime._as_array(request.get_tensor(tensor), copy=True))
    finished = time.perf_counter()
    precision, version = runtime.inference_precision(compiled, target), runtime.openvino_version()
    count, total_work = len(outputs), sum(work)
    results = []
    layers, node_layers = runtime.computing_layers(model), runtime.computing_node_layers(nodes)
    graph: dict = {}   # the runtime model's consumer graph, built once if a member's op node was renamed
    for (prefix, op_name, _), share, member_outputs in zip(outputs, work, produced):
        info = runtime.op_node_info(compiled, nodes, op_name, prefix + runtime.DATA_INPUT_NAME, graph)
        extra = {**runtime._extra(compiled, info), **runtime.fusion(layers, info, node_layers, op_name, prefix),
                 "batch": {"size": count}}
        results.append(RunResult(
            output=member_outputs[0], target_id=target.id, device=target.device, inference_precision=precision,
            openvino_version=version, layer_type=info.get("layerType"), primitive_type=info.get("primitiveType"),
            runtime_precision=info.get("runtimePrecision"), compile_seconds=(compiled_at - read_at) / count,
            infer_seconds=(finished - compiled_at) * share / total_work, extra=extra,
            read_seconds=(read_at - started) / count, outputs=tuple(member_outputs),
            output_precision=info.get("outputPrecisions")))
    return results


def with_batch_record(result: RunResult, **batch) -> RunResult:
    """``result`` with its ``extra["batch"]`` record updated by ``batch`` (e.g. ``failed_alone``)."""
    return replace(result, extra={**result.extra, "batch": {**result.extra.get("batch", {}), **batch}})
