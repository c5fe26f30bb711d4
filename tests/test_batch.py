"""Batched compilation (conformance/batch.py, api.RunSession, plugin --batch-size) changes no result.

Batched and per-case runs are OpenVINO against OpenVINO on the same inputs and the same kernels,
so outputs are compared bit for bit. Failures in a batch (OpenVINO rejecting a member, a worker
crash) must cost only their culprit, whose result is what a per-case run gives; a wrong member
is found; a member failing only inside a batch is reported as such.
"""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import api, batch, expectations, releases, render, runtime, worker
from conformance import inputs as inputs_module
from conformance.case import load_cases_text
from conformance.inputs import Inputs
from reporting_support import OUTER_RUN_VARIABLES, checkout_pythonpath, in_process_project, read_json
from test_per_group import SINGLE_GROUP   # GROUPS=1 BackpropData: a compile error on >= 2024.2 (registry)

CPU = api.Target("CPU", "f32")
REPOSITORY = Path(__file__).resolve().parent.parent

HEALTHY = """\
op: GroupConvolution
cases:
  - name: healthy
    data: [1, 4, 7, 6]
    kernel: [2, 3, 2, 3, 3]
    pads_begin: [1, 1]
    pads_end: [0, 1]
    sweep:
      strides: [[1, 1], [2, 1], [1, 2]]
      dilations: [[1, 1], [2, 1]]
"""


def _cases(text: str, name: str = "t.yaml"):
    return load_cases_text(text, name)


def _members(cases):
    return [batch.member(case, api.make_inputs(case)) for case in cases]


def _alone(members, tmp_path, isolate=False):
    return [batch._run_alone(m, CPU, tmp_path, isolate, worker.DEFAULT_TIMEOUT) for m in members]


def _same(batched, alone) -> None:
    """A batch member's result equals the per-case run's: same kind, and for a RunResult the
    same output bits at every inference, primitive and precisions; for a failure the same message / status."""
    assert type(batched) is type(alone)
    if isinstance(alone, runtime.RunResult):
        assert len(batched.outputs) == len(alone.outputs) >= 1 and batched.outputs[0] is batched.output
        for mine, theirs in zip(batched.outputs, alone.outputs):
            assert mine.dtype == theirs.dtype and mine.shape == theirs.shape
            assert mine.tobytes() == theirs.tobytes()
        assert (batched.primitive_type, batched.layer_type, batched.runtime_precision, batched.output_precision,
                batched.inference_precision) == (alone.primitive_type, alone.layer_type, alone.runtime_precision,
                                                 alone.output_precision, alone.inference_precision)
    elif isinstance(alone, worker.WorkerFailure):
        assert (batched.status, batched.signal_name) == (alone.status, alone.signal_name)
    else:
        assert str(batched) == str(alone)


def test_batch_key_keeps_static_and_sequence_cases_apart_and_leaves_large_cases_alone():
    static = _cases(HEALTHY)[0]
    assert batch.batch_key(static, CPU) == (CPU.id, "f32")
    assert batch.batch_key(static, dataclasses.replace(CPU, precision="bf16")) != batch.batch_key(static, CPU)
    assert batch.batch_key(dataclasses.replace(static, element_type="f16"), CPU) != batch.batch_key(static, CPU)
    dynamic = api.load_cases(REPOSITORY / "cases" / "dynamic")[0]
    assert dynamic.dynamic and batch.batch_key(dynamic, CPU) == (CPU.id, "f32", "sequence")
    runtime_shape = next(case for case in api.load_cases(REPOSITORY / "cases" / "runtime_inputs")
                         if case.output_shape_input == "parameter" and not case.dynamic)
    assert batch.batch_key(runtime_shape, CPU) == batch.batch_key(dynamic, CPU) != batch.batch_key(static, CPU)
    large = dataclasses.replace(static, data_shape=(1, 4, 1024, 1024))
    assert batch.batch_key(large, CPU) is None
    # A dynamic case is as large as its largest inference.
    shapes = tuple(dynamic.infer_shapes)
    assert batch.batch_key(dataclasses.replace(dynamic, infer_shapes=shapes[:1] + ((1, shapes[0][1], 1024, 1024),)),
                           CPU) is None


def test_batch_members_get_their_own_outputs_primitives_and_time_shares(tmp_path):
    members = _members(_cases(HEALTHY) + _cases(HEALTHY.replace("[2, 3, 2, 3, 3]", "[4, 1, 1, 3, 3]")
                                                .replace("[1, 4, 7, 6]", "[1, 4, 9, 5]"), "dw.yaml"))
    results = batch.run_batch(members, CPU, tmp_path)
    assert all(result.extra["batch"] == {"size": len(members)} for result in results)
    for batched, alone in zip(results, _alone(members, tmp_path)):
        _same(batched, alone)
    # Equal compile shares; infer shares in proportion to the members' multiply-adds.
    assert len({result.compile_seconds for result in results}) == 1
    work = [batch._multiply_adds(m.case) for m in members]
    shares = [result.infer_seconds for result in results]
    assert shares[work.index(max(work))] == max(shares)


def test_a_compile_failure_in_the_middle_of_a_batch_costs_no_healthy_member(tmp_path):
    healthy = _cases(HEALTHY)
    culprit = _cases(SINGLE_GROUP)[0]   # GROUPS=1 BackpropData: compile fails on >= 2024.2 (registry)
    members = _members(healthy[:3] + [culprit] + healthy[3:])
    results = batch.run_batch(members, CPU, tmp_path)
    alone = _alone(members, tmp_path)
    for batched, by_itself in zip(results, alone):
        _same(batched, by_itself)
    if isinstance(alone[3], runtime.RuntimeRejected):   # this release rejects it: the batch was bisected
        assert [isinstance(result, runtime.RunResult) for result in results] == [True] * 3 + [False] + [True] * 3
        sizes = [result.extra.get("batch", {}).get("size", 1) for result in results if isinstance(result, runtime.RunResult)]
        assert 1 < max(sizes) < 7   # halves that hold no culprit still ran as batches


def _registered_crash():
    """The default suite's depthwise huge-stride case, and whether the registry says it crashes here."""
    case = next(case for case in api.load_cases(REPOSITORY / "cases" / "spec_notes" / "huge_stride_depthwise.yaml"))
    registry = expectations.load_registry(REPOSITORY / "expected_failures.yaml")
    known = expectations.match(registry, case.id, CPU.id, releases.openvino_release(),
                               expectations.target_features(None))
    return case, known is not None and known.fails == "crashed"


def test_a_crash_in_a_worker_batch_is_bisected_to_its_culprit(tmp_path):
    culprit, registered = _registered_crash()
    healthy = _cases(HEALTHY)[:5]
    members = _members(healthy[:2] + [culprit] + healthy[2:])
    results = batch.run_batch(members, CPU, tmp_path, isolate=True)
    alone = _alone(members, tmp_path, isolate=True)
    for batched, by_itself in zip(results, alone):
        _same(batched, by_itself)
    if registered:
        assert isinstance(results[2], worker.WorkerFailure) and results[2].status == worker.CRASHED
        assert all(isinstance(result, runtime.RunResult) for index, result in enumerate(results) if index != 2)


FAULTS = """\
import os
import signal

from conformance import batch


def crash_if_13_wide(xml, weights, names, feed, element_types, work, target):
    if any(array.shape[-1] == 13 for array in feed.values()):
        os.kill(os.getpid(), signal.SIGSEGV)
    return batch.infer_batch(xml, weights, names, feed, element_types, work, target)


def hang_if_13_wide(xml, weights, names, feed, element_types, work, target):
    if any(array.shape[-1] == 13 for array in feed.values()):
        import time
        time.sleep(3600)
    return batch.infer_batch(xml, weights, names, feed, element_types, work, target)
"""


@pytest.fixture
def faults(tmp_path, monkeypatch):
    """A module the worker can import (by name) whose batch jobs crash or hang when a member's data is
    13 wide: a fault that only batches see, wherever the real crashes of this release are."""
    (tmp_path / "batch_faults.py").write_text(FAULTS)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(tmp_path), checkout_pythonpath()]))
    monkeypatch.syspath_prepend(str(tmp_path))
    import batch_faults
    yield batch_faults
    sys.modules.pop("batch_faults", None)


def test_an_injected_worker_crash_is_bisected_and_a_hang_runs_every_member_alone(tmp_path, monkeypatch, faults):
    cases = _cases(HEALTHY)
    culprit = dataclasses.replace(cases[0], id="t.yaml::wide", data_shape=(1, 4, 7, 13))
    members = _members(cases[:4] + [culprit] + cases[4:])
    calls = []
    real_call = worker.call

    def counting_call(function, *args, **kwargs):
        calls.append(len(args[2]))        # members in the batch job
        return real_call(function, *args, **kwargs)

    monkeypatch.setattr(worker, "call", counting_call)
    monkeypatch.setattr(batch, "infer_batch", faults.crash_if_13_wide)
    results = batch.run_batch(members, CPU, tmp_path, isolate=True)
    # The culprit ran alone (the per-case job has no fault): every member has its per-case result.
    for batched, by_itself in zip(results, _alone(members, tmp_path, isolate=True)):
        _same(batched, by_itself)
    assert "batch" not in results[4].extra
    assert sum("batch" in result.extra for result in results) >= len(results) - 2   # at most the culprit's pair alone
    assert calls[0] == 7 and len(calls) <= 2 * 3   # halves down to the culprit, not one job per member

    calls.clear()
    monkeypatch.setattr(batch, "infer_batch", faults.hang_if_13_wide)
    results = batch.run_batch(members[3:6], CPU, tmp_path, isolate=True, timeout=5)
    assert calls == [3] and all(isinstance(result, runtime.RunResult) for result in results)
    assert all("batch" not in result.extra for result in results)   # all alone after the hang


def _session_outcomes(session, cases, target=CPU):
    """Check every case with the session, each told about the ones after it (as the plugin does)."""
    outcomes = []
    for index, case in enumerate(cases):
        planned = [api.Planned(other, target) for other in cases[index + 1:]]
        outcomes.append(session.check(case, target, upcoming=lambda planned=planned: planned))
    return outcomes


def _plant_wrong_weight(monkeypatch, case_id: str, index: int) -> None:
    """The IR of ``case_id`` (its own and its subgraph in a batch: one builder) gets kernel weight
    ``index`` off by one."""
    real_add_case = render.add_case

    def add_case(graph, case, inputs, prefix=""):
        if case.id == case_id:
            kernel = inputs.kernel.copy()
            kernel.flat[index] += 1.0
            inputs = Inputs(inputs.data, kernel)
        return real_add_case(graph, case, inputs, prefix)

    monkeypatch.setattr(render, "add_case", add_case)


def test_a_planted_wrong_member_inside_a_batch_is_found(tmp_path, monkeypatch):
    """One member's IR carries a wrong weight (in its own IR and in the batch's, which share the
    per-case builder): that member fails, in the batch and alone; the others pass."""
    cases = _cases(HEALTHY)
    planted = cases[3].id
    _plant_wrong_weight(monkeypatch, planted, 5)
    outcomes = _session_outcomes(api.RunSession(tmp_path, isolate=False, batch_size=8), cases)
    assert [outcome.verdict.passed for outcome in outcomes] == [case.id != planted for case in cases]
    wrong = outcomes[3]
    assert wrong.run.extra["batch"] == {"size": len(cases), "failed_alone": True} and wrong.note is None
    assert all(outcome.run.extra["batch"]["size"] > 1 for outcome in outcomes)


def test_the_lane_reruns_a_member_failing_inside_a_batch_ahead_with_the_same_outcomes(tmp_path, monkeypatch):
    """On a lane (the default when batching), the first item of a batch compares the other small
    members at once and submits the re-run alone of the one failing inside the batch (and its
    per-group check) before its item comes; every outcome is what the session without a lane gives."""
    cases = _cases(HEALTHY)
    monkeypatch.setattr(batch, "infer_batch", _corrupting(2))
    overlapped = api.RunSession(tmp_path / "lane", isolate=False, batch_size=8)
    assert overlapped._lane is not None
    first = overlapped.check(cases[0], CPU, upcoming=lambda: [api.Planned(other, CPU) for other in cases[1:]])
    assert first.verdict.passed and set(overlapped._alone) == {(cases[2].id, CPU.id)}
    assert set(overlapped._groups) == {(cases[2].id, CPU.id)}
    rest = [overlapped.check(case, CPU, upcoming=lambda index=index: [api.Planned(other, CPU)
                                                                       for other in cases[index + 1:]])
            for index, case in enumerate(cases) if index > 0]
    overlapped.close()
    serial = _session_outcomes(api.RunSession(tmp_path / "serial", isolate=False, batch_size=8, overlap=False), cases)
    for with_lane, without in zip([first, *rest], serial):
        assert (with_lane.verdict.passed, with_lane.verdict.mismatches, with_lane.note, with_lane.run.extra["batch"]) \
            == (without.verdict.passed, without.verdict.mismatches, without.note, without.run.extra["batch"])
        assert with_lane.run.output.tobytes() == without.run.output.tobytes()
    assert [outcome.verdict.passed for outcome in serial] == [index != 2 for index in range(len(cases))]
    assert "fails only inside a batch" in serial[2].describe()


def test_the_lane_is_kept_busy_with_the_batches_after_the_current_one(tmp_path):
    """Checking an item tops up the batches on the lane to ``LANE_DEPTH`` unfinished ones, not one at a
    time: with batches of 2, the first item's check leaves every later item of this file in a batch."""
    cases = _cases(HEALTHY)
    assert api.LANE_DEPTH >= 2 and len(cases) == 2 * (1 + api.LANE_DEPTH)
    session = api.RunSession(tmp_path, isolate=False, batch_size=2)
    first = session.check(cases[0], CPU, upcoming=lambda: [api.Planned(other, CPU) for other in cases[1:]])
    assert first.verdict.passed
    assert set(session._batched) == {(case.id, CPU.id) for case in cases[1:]}
    session.close()


def _two_product_cases(count: int):
    """Tiny cases of one output of two products: about one first draw in ten cancels to 0 (the ids are
    those of test_tolerance's tiny cases)."""
    return _cases("op: GroupConvolution\ncases:\n" + "".join(
        f"  - {{name: id_{number * 7919 % 10007}, data: [1, 1, 2], kernel: [1, 1, 1, 2]}}\n" for number in range(count)))


def test_a_first_draw_settles_to_what_make_inputs_gives():
    """``first_draw`` + ``settled`` is ``make_inputs``; ``redrawn`` says exactly when the first draw cancels."""
    redrawn = 0
    for case in _two_product_cases(40):
        drawn = inputs_module.first_draw(case)
        inputs, made = inputs_module.settled(case, drawn), api.make_inputs(case)
        assert (inputs.data.tobytes(), inputs.kernel.tobytes()) == (made.data.tobytes(), made.kernel.tobytes())
        assert inputs_module.redrawn(drawn, inputs) == inputs_module.fill_cancels(case, drawn)
        redrawn += inputs_module.redrawn(drawn, inputs)
    assert redrawn > 0


def test_batches_started_on_first_draws_give_every_item_its_settled_inputs(tmp_path):
    """``RunSession.start`` batches the upcoming items on their first draws (no torch needed). An item
    whose draw is redrawn when it settles does not take that batch's output (it is for other
    inputs): it runs again on its settled inputs. Every outcome equals the per-case session's."""
    cases = _two_product_cases(24)
    cancelling = {case.id for case in cases if inputs_module.fill_cancels(case, inputs_module.first_draw(case))}
    assert cancelling   # else this proves nothing
    session = api.RunSession(tmp_path / "started", isolate=False, batch_size=8)
    session.start(lambda: [api.Planned(case, CPU) for case in cases])
    assert len(session._formed) == 3   # every item batched before the first one comes
    started = _session_outcomes(session, cases)
    session.close()
    alone = _session_outcomes(api.RunSession(tmp_path / "alone", isolate=False, batch_size=1), cases)
    for case, mine, theirs in zip(cases, started, alone):
        assert mine.verdict.passed and theirs.verdict.passed, case.id
        assert mine.steps[0].inputs.data.tobytes() == theirs.steps[0].inputs.data.tobytes()
        assert mine.run.output.tobytes() == theirs.run.output.tobytes()
        assert ("batch" in mine.run.extra) == (case.id not in cancelling)


def test_a_wrong_member_run_alone_by_a_bisection_keeps_its_per_case_failure(tmp_path, monkeypatch):
    """A batch of a wrong member and a member OpenVINO rejects: the bisection runs both alone, and the
    wrong one's failure is its per-case outcome (no batch record, no second run)."""
    wrong, culprit = _cases(HEALTHY)[0], _cases(SINGLE_GROUP)[0]
    if not isinstance(_alone(_members([culprit]), tmp_path)[0], runtime.RuntimeRejected):
        pytest.skip("this OpenVINO release compiles GROUPS=1 BackpropData (rejected on >= 2024.2)")
    _plant_wrong_weight(monkeypatch, wrong.id, 0)
    session = api.RunSession(tmp_path, isolate=False, batch_size=2)
    outcome = session.check(wrong, CPU, upcoming=lambda: [api.Planned(culprit, CPU)])
    assert not outcome.verdict.passed and "batch" not in outcome.run.extra and outcome.note is None
    with pytest.raises(runtime.RuntimeRejected):
        session.check(culprit, CPU, upcoming=lambda: [])


def _corrupting(member_index: int):
    real = batch.infer_batch

    def infer_batch(*args):
        results = real(*args)
        wrong = results[member_index].output.copy()
        wrong.flat[2] += 1.0
        results[member_index] = dataclasses.replace(results[member_index], output=wrong, outputs=(wrong,))
        return results
    return infer_batch


def test_a_member_failing_only_inside_a_batch_is_said_to(tmp_path, monkeypatch):
    cases = _cases(HEALTHY)
    monkeypatch.setattr(batch, "infer_batch", _corrupting(1))
    outcomes = _session_outcomes(api.RunSession(tmp_path, isolate=False, batch_size=4), cases)
    assert [outcome.verdict.passed for outcome in outcomes] == [True, False, True, True, True, False]   # batches [0-3], [4, 5]
    failing = outcomes[1]
    assert failing.run.extra["batch"] == {"size": 4, "failed_alone": False}
    assert "fails only inside a batch" in failing.describe() and "run alone (its own IR) it passes" in failing.describe()


# --- post-op cases in batches ------------------------------------------------------------------

POST_OP_PATHS = ("cases/post_ops", "cases/regressions/post_ops_backprop_data.yaml")


def _post_op_cases(kinds=None, element_type=None):
    """The default suite's post-op cases that run in batches on CPU-f32: those the registry does not
    make run alone (``api.RUN_ALONE``) at any inference thread count; with ``kinds``, only those
    with a post-op of one of these kinds, with ``element_type`` only those of that element type."""
    registry = expectations.load_registry(REPOSITORY / "expected_failures.yaml")
    release, features = releases.openvino_release(), expectations.target_features(None)
    chosen = []
    for case in (case for path in POST_OP_PATHS for case in api.load_cases(REPOSITORY / path, root=REPOSITORY / "cases")):
        known = expectations.match(registry, case.id, CPU.id, release, features, threads=1 << 10)
        if case.post_ops and not (known is not None and known.fails in api.RUN_ALONE) \
                and (kinds is None or any(post_op.kind in kinds for post_op in case.post_ops)) \
                and element_type in (None, case.element_type):
            chosen.append(case)
    return chosen


def test_post_op_cases_share_batches_with_cases_without_post_ops():
    plain = _cases(HEALTHY)[0]
    cases = _post_op_cases()
    assert {post_op.kind for case in cases for post_op in case.post_ops} == {"bias", "batch_norm", "relu", "clamp", "sum"}
    assert {batch.batch_key(case, CPU) for case in cases if case.element_type == "f32"} == {batch.batch_key(plain, CPU)}


def test_a_batch_ir_prefixes_every_post_op_layer_and_the_sum_input_of_its_member():
    """Each member's layers in the batch IR are its own IR's layers (same types, same order), named
    with its prefix; the sum addend is a prefixed runtime input fed its rendered values."""
    from lxml import etree
    cases = _post_op_cases({"sum"}, "f32")[:2] + _cases(HEALTHY)[:1]
    members = _members(cases)
    xml, _, subgraphs = render.render_batch([(m.case, m.inputs) for m in members])
    batch_layers = [(layer.get("name"), layer.get("type")) for layer in etree.fromstring(xml).iter("layer")]
    for index, (m, subgraph) in enumerate(zip(members, subgraphs)):
        own_xml, _ = render.render_bytes(m.case, m.inputs)
        own = [(layer.get("name"), layer.get("type")) for layer in etree.fromstring(own_xml).iter("layer")]
        prefix = render.batch_prefix(index)
        assert [(name[len(prefix):], kind) for name, kind in batch_layers if name.startswith(prefix)] == own
        assert subgraph.result == prefix + "result"
        own_feed = render.RenderedIR(Path("x"), Path("y"), "", runtime_inputs=render._render(m.case, m.inputs)[2]).feed(m.inputs)
        feed = subgraph.feed(m.inputs)
        assert list(feed) == [prefix + name for name in own_feed]
        for name, array in own_feed.items():
            assert np.array_equal(feed[prefix + name], array)
    assert sum(len(m.case.post_ops) for m in members) and all(name.startswith("m") for name, _ in batch_layers)
    assert any(name.endswith(".sum.input") for name in subgraphs[0].feed(members[0].inputs))


def test_post_op_members_get_the_outputs_and_fusion_records_of_their_solo_runs(tmp_path):
    """Every batchable post-op case of the default suite in one model: each member's output bits,
    primitive, precisions and record of which post-ops fused into the op's node (or ran as their own
    nodes, or were folded away) are its solo run's. A difference would be context-dependent
    behaviour of the plugin: this test names the case."""
    from conformance import post_ops
    members = _members(_post_op_cases(element_type="f32"))
    results = batch.run_batch(members, CPU, tmp_path)
    assert all(result.extra["batch"] == {"size": len(members)} for result in results)
    records = []
    for m, batched, alone in zip(members, results, _alone(members, tmp_path)):
        _same(batched, alone)
        record = post_ops.fusion_record(m.case, batched.extra)
        assert record == post_ops.fusion_record(m.case, alone.extra), m.case.id
        records.append(record)
    # The records are not vacuous: the suite has post-ops fused, folded and run as their own nodes.
    assert all(record["ops"] for record in records)
    assert any(record["fused"] for record in records) and any(record["folded"] for record in records)
    assert any(record["not_fused"] for record in records)


def test_a_planted_wrong_post_op_member_inside_a_batch_is_found(tmp_path, monkeypatch):
    """One member's IR (its own and its subgraph in the batch: the same builder) carries a bias
    one channel off; the oracle has the case's: that member fails, in the batch and alone."""
    from conformance import post_ops
    cases = _post_op_cases({"bias", "batch_norm"}, "f32")[:6]
    planted = cases[2]
    real_add_post_ops = render.add_post_ops

    def add_post_ops(graph, case, source, dims, prefix=""):
        if case.id == planted.id:
            channels = case.geometry().output_shape[1]
            explicit = post_ops.channel_slice(case, 0, channels)
            index = next(i for i, post_op in enumerate(explicit) if post_op.shift is not None)
            shifted = explicit[index].shift[1:] + explicit[index].shift[:1]
            case = dataclasses.replace(case, post_ops=explicit[:index] + (
                dataclasses.replace(explicit[index], shift=shifted),) + explicit[index + 1:])
        return real_add_post_ops(graph, case, source, dims, prefix)

    monkeypatch.setattr(render, "add_post_ops", add_post_ops)
    outcomes = _session_outcomes(api.RunSession(tmp_path, isolate=False, batch_size=8), cases)
    assert [outcome.verdict.passed for outcome in outcomes] == [case.id != planted.id for case in cases]
    assert outcomes[2].run.extra["batch"] == {"size": len(cases), "failed_alone": True}
    assert all(outcome.run.extra["batch"]["size"] == len(cases) for outcome in outcomes)


def test_batched_and_per_case_post_op_runs_agree_bit_for_bit(tmp_path):
    """The default suite's post-op items through the plugin, batched (the default) and with
    --batch-size 1: the same outcomes, primitives, precisions, verdict figures, output bits and
    fusion records (``run.post_ops``); the batchable ones ran in batches."""
    items = _assert_runs_agree(_suite_run(tmp_path, "batched", paths=POST_OP_PATHS),
                               _suite_run(tmp_path, "alone", "--batch-size", "1", paths=POST_OP_PATHS),
                               run_fields=("post_ops",))
    batchable = {case.id for case in _post_op_cases(element_type="f32")}
    assert all((item.get("run") or {}).get("post_ops", {}).get("ops") for item in items.values()
               if item["case_id"] in batchable)   # the records compared are not empty
    in_batches = {item["case_id"] for item in items.values()
                  if (item.get("run") or {}).get("batch", {}).get("size", 1) > 1}
    assert batchable <= in_batches and len(batchable) >= 50


CORRUPTING_CONFTEST = """\
import dataclasses
from conformance import batch

_real = batch.infer_batch


def _infer_batch(*args):
    results = _real(*args)
    wrong = results[0].output.copy()
    wrong.flat[0] += 1.0
    results[0] = dataclasses.replace(results[0], output=wrong, outputs=(wrong,))
    return results


def pytest_configure(config):
    batch.infer_batch = _infer_batch


def pytest_unconfigure(config):
    batch.infer_batch = _real
"""


def test_the_plugin_reports_a_failure_only_inside_a_batch(pytester):
    cases = in_process_project(pytester)
    (cases / "conv.yaml").write_text(HEALTHY)
    pytester.makeconftest(CORRUPTING_CONFTEST)
    result = pytester.runpytest("--batch-size", "3")
    # Items 1 and 4 lead their batches (member 0): each fails inside its batch only.
    result.assert_outcomes(passed=4, failed=2)
    result.stdout.fnmatch_lines(["*fails only inside a batch: in one model with 2 other case(s)*"])
    document = read_json(pytester.path / "reports" / "conformance.json")
    failed = [item for item in document["items"] if item["outcome"] == "failed"]
    assert [item["run"]["batch"] for item in failed] == [{"size": 3, "failed_alone": False}] * 2
    passed = [item for item in document["items"] if item["outcome"] == "passed"]
    assert all(item["run"]["batch"] == {"size": 3} for item in passed)


def _suite_run(tmp_path: Path, name: str, *options: str, paths=("cases",)) -> tuple[dict, Path]:
    """The default conformance suite (or its ``paths``) in a subprocess (report and result bundle under
    ``tmp_path``)."""
    report, results = tmp_path / name / "conformance.json", tmp_path / name / "results"
    environment = {name: value for name, value in os.environ.items() if name not in OUTER_RUN_VARIABLES}
    environment["PYTHONPATH"] = checkout_pythonpath()
    completed = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
         "--conformance-report", str(report), "--save-results", str(results),
         "--ir-dir", str(tmp_path / "ir"), "--repro-dir", str(tmp_path / name / "repro"), *options,
         *paths],   # the conformance suite only, never tests/ (this test would run itself)
        cwd=REPOSITORY, env=environment, capture_output=True, text=True, timeout=3000)
    assert completed.returncode == 0, completed.stdout[-3000:] + completed.stderr[-3000:]
    return read_json(report), results


def _assert_runs_agree(batched_run: tuple[dict, Path], alone_run: tuple[dict, Path], run_fields=()) -> dict:
    """Two ``_suite_run``s, batched and ``--batch-size 1``, agree: the same outcomes, primitives,
    precisions (and ``run_fields`` of the run record) and verdict figures per item, and the same
    output bits; the per-case run's items by node id."""
    from conformance import bundles
    (batched, batched_results), (alone, alone_results) = batched_run, alone_run

    def by_item(document):
        return {item["nodeid"]: item for item in document["items"]}

    items_batched, items_alone = by_item(batched), by_item(alone)
    assert items_batched.keys() == items_alone.keys()
    # Items registered ``intermittent`` differ run to run by definition (the device reads memory it
    # never wrote): neither their outcome nor their output bits can be compared between two runs.
    intermittent = {nodeid for nodeid, item in items_alone.items()
                    if "known intermittent deviation" in (item.get("reason") or "")
                    or "known intermittent deviation" in (items_batched[nodeid].get("reason") or "")}
    # A registered deviation's wrong values are the device's, and some are not reproducible from one model
    # to another: brgconv_avx512_bf16 (fuzz-avx512-bf16-brgconv-stride-pads) gave a max abs error of 15 in
    # every per-case run and 5.1e29 in one batched suite run of ~6 (memory it never wrote). For items that
    # are expected failures in both runs, the outcome, kernel and precisions must agree; their wrong values
    # and output bits are not compared. Every other item's are, bit for bit.
    deviating = {nodeid for nodeid, item in items_alone.items()
                 if item["outcome"] == "xfailed" and items_batched[nodeid]["outcome"] == "xfailed"}
    for nodeid, item in items_alone.items():
        if nodeid in intermittent:
            continue
        other = items_batched[nodeid]
        assert other["outcome"] == item["outcome"], nodeid
        run, other_run = item.get("run") or {}, other.get("run") or {}
        for field in ("primitive_type", "layer_type", "runtime_precision", "output_precision",
                      "inference_precision", "ir_digest", *run_fields):
            assert other_run.get(field) == run.get(field), (nodeid, field)
        assert "batch" not in run
        # The per-group check of a failing grouped item: slices in one model vs one model per group.
        per_group, other_per_group = dict(item.get("per_group") or {}), dict(other.get("per_group") or {})
        assert "batch" not in per_group and other_per_group.pop("batch", 2) > 1, nodeid
        if nodeid in deviating:
            assert (other.get("verdict") or {}).get("passed") == (item.get("verdict") or {}).get("passed"), nodeid
            continue
        for field in ("passed", "mismatches", "max_abs_error", "max_rel_error", "max_atol"):
            assert (other.get("verdict") or {}).get(field) == (item.get("verdict") or {}).get(field), (nodeid, field)
        assert other_per_group == per_group, nodeid
    _, saved_batched = bundles.load_bundle(batched_results)
    _, saved_alone = bundles.load_bundle(alone_results)
    assert saved_batched.keys() == saved_alone.keys() and saved_alone
    unstable = {items_alone[nodeid]["case_id"] for nodeid in intermittent | deviating}
    for key, item in saved_alone.items():
        if key[0] in unstable:
            continue
        output, output_batched = item.arrays()[0], saved_batched[key].arrays()[0]
        assert output.dtype == output_batched.dtype and output.shape == output_batched.shape, key
        assert output.tobytes() == output_batched.tobytes(), key
    return items_batched


def test_batched_and_per_case_suite_runs_agree_bit_for_bit(tmp_path):
    """The default suite through the plugin, batched (the default) and with --batch-size 1: the same
    outcomes, primitives, precisions, post-op fusion records and verdict figures per item, and the
    same output bits."""
    items = _assert_runs_agree(_suite_run(tmp_path, "batched"), _suite_run(tmp_path, "alone", "--batch-size", "1"),
                               run_fields=("post_ops",))
    ran_in_batches = sum((item.get("run") or {}).get("batch", {}).get("size", 1) > 1 for item in items.values())
    assert ran_in_batches > len(items) // 2


# ---- sequence members: dynamic data dims and runtime output_shape (one inference per feed) ----------------

def _sequence_cases():
    """The default suite's cases whose outputs need a sequence of inferences or a runtime output_shape
    (dynamic/, runtime_inputs/, fuzz_findings/: healthy ones and ones OpenVINO rejects), with the
    registry's ``fails`` for each on CPU f32 here."""
    registry = expectations.load_registry(REPOSITORY / "expected_failures.yaml")
    release, features = releases.openvino_release(), expectations.target_features(None)
    cases = [case for case in api.load_cases(REPOSITORY / "cases") if batch.sequence_kind(case)]
    registered = {}
    for case in cases:
        known = expectations.match(registry, case.id, CPU.id, release, features)
        registered[case.id] = known.fails if known is not None else None
    return cases, registered


def test_sequence_members_of_different_lengths_give_their_per_case_outputs_per_inference(tmp_path):
    """Every sequence case of the default suite in one run_batch per batch key (isolated): each member's
    result is its per-case run's, inference by inference (members with 2, 3 and 4 feeds share the model);
    the members OpenVINO rejects (or crashes on) are bisected to themselves."""
    cases, registered = _sequence_cases()
    by_key: dict = {}
    for case in cases:   # one model per element type (run_batch takes one batch key)
        by_key.setdefault(batch.batch_key(case, CPU), []).append(case)
    cases = [case for group in by_key.values() for case in group]
    members = _members(cases)
    assert {len(m.sequence) for m in members} >= {1, 2, 3, 4}
    results = [result for group in by_key.values()
               for result in batch.run_batch(_members(group), CPU, tmp_path, isolate=True)]
    alone = _alone(members, tmp_path, isolate=True)
    for case, batched, by_itself in zip(cases, results, alone):
        _same(batched, by_itself)
        if isinstance(by_itself, runtime.RunResult):
            assert len(batched.outputs) == len(batch.member(case, api.make_inputs(case)).sequence)
    rejected = [case.id for case, result in zip(cases, results) if isinstance(result, runtime.RuntimeRejected)]
    assert rejected and all(registered[case_id] == "error" for case_id in rejected)
    assert sum(result.extra.get("batch", {}).get("size", 1) > 1 for result in results
               if isinstance(result, runtime.RunResult)) >= 5


def test_a_sequence_member_rejected_at_compile_or_at_infer_costs_no_other_member(tmp_path):
    """Healthy dynamic members around one OpenVINO rejects: at compile (a registered dynamic BackpropData
    compile error) or at its third inference (a data shape outside its declared range): the culprit ends
    as its per-case run does, every other member still has its per-case outputs, from a batch."""
    cases, registered = _sequence_cases()
    healthy = [case for case in cases if case.id.startswith("dynamic/") and registered[case.id] is None][:6]
    at_compile = next(case for case in cases if case.dynamic and registered[case.id] == "error")
    ranged = next(case for case in healthy if any(".." in dim for dim in case.data_dims))
    bad = list(batch.member(ranged, api.make_inputs(ranged)).sequence)
    axis = next(axis for axis, dim in enumerate(ranged.data_dims) if ".." in dim)
    too_large = list(bad[-1].data.shape)
    too_large[axis] = int(ranged.data_dims[axis].split("..")[1]) + 1
    bad[-1] = Inputs(np.ones(too_large, dtype=bad[-1].data.dtype), bad[-1].kernel)
    at_infer = batch.Member(dataclasses.replace(ranged, id=ranged.id + "-out-of-range"), bad[0], tuple(bad))
    for culprit, stage in ((batch.member(at_compile, api.make_inputs(at_compile)), "compile"), (at_infer, "infer")):
        members = _members(healthy[:3]) + [culprit] + _members(healthy[3:])
        results = batch.run_batch(members, CPU, tmp_path)
        alone = _alone(members, tmp_path)
        assert isinstance(alone[3], runtime.RuntimeRejected) and alone[3].stage == stage
        for batched, by_itself in zip(results, alone):
            _same(batched, by_itself)
        assert [isinstance(result, runtime.RunResult) for result in results] == [True] * 3 + [False] + [True] * 3
        assert max(result.extra.get("batch", {}).get("size", 1) for result in results if result is not results[3]) > 1


def test_batched_and_per_case_sessions_agree_on_every_sequence_item(tmp_path):
    """The default suite's sequence items through RunSession, batched (8) and one model per case: the
    same outcomes, primitives, precisions, per-inference verdict figures and output bits; registered
    compile errors run alone (RUN_ALONE), as the plugin runs them."""
    cases, registered = _sequence_cases()

    def outcomes(batch_size):
        session = api.RunSession(tmp_path / str(batch_size), isolate=True, batch_size=batch_size)
        ended = []
        for index, case in enumerate(cases):
            planned = [api.Planned(other, CPU, registered[other.id]) for other in cases[index + 1:]]
            try:
                ended.append(session.check(case, CPU, registered_failure=registered[case.id],
                                           upcoming=lambda planned=planned: planned))
            except api.RuntimeRejected as error:
                ended.append(str(error))
            except api.WorkerFailed as failed:   # a registered crash: its status and signal (the message holds seconds)
                ended.append(f"{failed.failure.status}: {failed.failure.signal_name}")
        return ended

    batched, alone = outcomes(8), outcomes(1)
    in_batches = 0
    for case, mine, theirs in zip(cases, batched, alone):
        assert type(mine) is type(theirs), case.id
        if isinstance(theirs, str):
            assert mine == theirs
            continue
        in_batches += mine.run.extra.get("batch", {}).get("size", 1) > 1
        assert "batch" not in theirs.run.extra and mine.note is None
        for field in ("primitive_type", "layer_type", "runtime_precision", "output_precision", "inference_precision"):
            assert getattr(mine.run, field) == getattr(theirs.run, field), (case.id, field)
        assert mine.ir.digest == theirs.ir.digest
        assert len(mine.verdicts) == len(theirs.verdicts) == len(mine.run.outputs) == len(theirs.run.outputs)
        for one, other in zip(mine.verdicts, theirs.verdicts):
            assert (one.passed, one.mismatches, one.max_abs_error, one.max_atol) == \
                   (other.passed, other.mismatches, other.max_abs_error, other.max_atol), case.id
        for one, other in zip(mine.run.outputs, theirs.run.outputs):
            assert one.shape == other.shape and one.tobytes() == other.tobytes(), case.id
    assert in_batches >= 8


def test_a_planted_wrong_dynamic_member_is_found_and_one_wrong_only_inside_a_batch_is_said_to(tmp_path, monkeypatch):
    """Among the suite's healthy dynamic cases in one batch: a member whose IR carries a wrong weight fails
    (in the batch and alone); a member whose batch output is wrong at its second inference only fails
    only inside a batch, at that inference."""
    cases, registered = _sequence_cases()
    healthy = [case for case in cases if case.dynamic and registered[case.id] is None]
    wrong = next(index for index, case in enumerate(healthy) if index and case.kernel_input != "parameter")
    planted, only = healthy[wrong].id, next(index for index in range(1, len(healthy)) if index != wrong)
    real_infer_batch = batch.infer_batch
    _plant_wrong_weight(monkeypatch, planted, 1)

    def infer_batch(*args):   # member ``only``'s second output, in the batch of all only
        results = real_infer_batch(*args)
        if len(results) == len(healthy):
            outputs = list(results[only].outputs)
            outputs[1] = outputs[1].copy()
            outputs[1].flat[0] += 1.0
            results[only] = dataclasses.replace(results[only], outputs=tuple(outputs))
        return results

    monkeypatch.setattr(batch, "infer_batch", infer_batch)
    outcomes = _session_outcomes(api.RunSession(tmp_path, isolate=False, batch_size=len(healthy)), healthy)
    assert [outcome.verdict.passed for outcome in outcomes] == [index not in (wrong, only)
                                                                for index in range(len(healthy))]
    assert outcomes[wrong].run.extra["batch"] == {"size": len(healthy), "failed_alone": True}
    only_inside = outcomes[only]
    assert only_inside.run.extra["batch"] == {"size": len(healthy), "failed_alone": False}
    assert [verdict.passed for verdict in only_inside.verdicts][:3] == [True, False, True][:len(only_inside.verdicts)]
    assert only_inside.step_index == 1 and "fails only inside a batch" in only_inside.describe()
