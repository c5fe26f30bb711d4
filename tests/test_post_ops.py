"""Post-ops after the op (conformance/post_ops.py): the field, the IR nodes, the oracle's math, the
fusion record read from a compiled model, the tolerance terms, and a planted wrong oracle caught."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from lxml import etree

from conformance import api, oracle, post_ops, render
from conformance.case import CaseFileErrors, load_cases_text
from conformance.compare import UNIT_ROUNDOFF, tolerance_for
from conformance.inputs import Inputs
from reporting_support import read_json, subprocess_project

CPU = api.Target("CPU", "f32")
CASES = Path(__file__).resolve().parent.parent / "cases"

DEPTHWISE = """\
op: GroupConvolution
cases:
  - name: dw
    data: [1, 16, 8, 8]
    kernel: [16, 1, 1, 3, 3]
    pads_begin: 1
    pads_end: 1
    post_ops: {post_ops}
"""


def _case(post_ops_text: str, template: str = DEPTHWISE, **replacements):
    text = template.format(post_ops=post_ops_text)
    for old, new in replacements.items():
        text = text.replace(old, new)
    return load_cases_text(text, "<test>")[0]


def _errors(text: str) -> list[str]:
    with pytest.raises(CaseFileErrors) as raised:
        load_cases_text(text, "t.yaml")
    return [str(error) for error in raised.value.errors]


# --- the field: parsed, checked, errors located --------------------------------------------

def test_post_ops_parse_into_the_case():
    case = _case("[bias, {batch_norm: {scale: [2]}}, relu, {clamp: {min: -1, max: 6}}, sum]".replace(
        "[2]", "[" + ", ".join(["2"] * 16) + "]"))
    assert [p.kind for p in case.post_ops] == ["bias", "batch_norm", "relu", "clamp", "sum"]
    assert case.post_ops[1].scale == (2.0,) * 16 and case.post_ops[1].shift is None
    assert (case.post_ops[3].minimum, case.post_ops[3].maximum) == (-1.0, 6.0)
    assert "post_ops" in case.kinds


@pytest.mark.parametrize("items, line, field, words", [
    ("\n      - relu\n      - softmax", 10, "post_ops[1]", "unknown post-op 'softmax'"),
    ("\n      - clamp", 9, "post_ops[0]", "clamp needs its bounds"),
    ("\n      - bias\n      - {clamp: {min: 3, max: 1}}", 10, "post_ops[1]", "min 3 > max 1"),
    ("\n      - {relu: 1}", 9, "post_ops[0]", "relu takes no parameters"),
    ("\n      - {batch_norm: {scale: [1, x]}}", 9, "post_ops[0]", "batch_norm.scale: expected a non-empty list"),
    ("\n      - {bias: [1, 2], relu: 1}", 9, "post_ops[0]", "one-key mapping"),
])
def test_a_bad_item_is_located_at_its_own_line(items, line, field, words):
    (error,) = _errors(DEPTHWISE.format(post_ops=items))
    assert error.startswith(f"t.yaml:{line}: {field}: ") and words in error, error


def test_relations_are_checked_against_the_case():
    (error,) = _errors(DEPTHWISE.format(post_ops="[{bias: [1, 2, 3]}]"))
    assert error.startswith("t.yaml:8: post_ops: ") and "3 values; the output has 16 channels" in error
    (error,) = _errors(DEPTHWISE.format(post_ops="[relu]").replace("  - name: dw\n", "  - name: dw\n    element_type: i32\n"))
    assert "floating-point element types" in error and "not i32" in error
    dynamic = DEPTHWISE.format(post_ops="[sum]").replace("data: [1, 16, 8, 8]", "data: [-1, 16, 8, 8]\n"
                                                          "    infer_shapes: [[1, 16, 8, 8], [2, 16, 8, 8]]")
    (error,) = _errors(dynamic)
    assert "sum needs a static output shape" in error
    (error,) = _errors(DEPTHWISE.format(post_ops="[]"))
    assert "post_ops: expected a non-empty list of post-ops" in error


# --- the IR --------------------------------------------------------------------------------

def test_rendered_ir_has_the_post_op_nodes_in_order(tmp_path):
    case = _case("[bias, batch_norm, relu, {clamp: {min: -2, max: 6}}, sum]")
    xml, _ = render.render_bytes(case, api.make_inputs(case))
    net = etree.fromstring(xml)
    layers = {layer.get("id"): layer for layer in net.iter("layer")}
    edges = {(edge.get("to-layer"), edge.get("to-port")): edge.get("from-layer") for edge in net.iter("edge")}
    # Walk back from the Result: the chain the op's output goes through.
    result = next(layer for layer in layers.values() if layer.get("type") == "Result")
    chain, current = [], edges[(result.get("id"), "0")]
    while layers[current].get("name") != "op":
        chain.append((layers[current].get("type"), layers[current].get("name")))
        current = edges[(current, "0")]
    assert chain[::-1] == [("Add", "post_op.0.bias"), ("Multiply", "post_op.1.batch_norm.scale"),
                           ("Add", "post_op.1.batch_norm.shift"), ("ReLU", "post_op.2.relu"),
                           ("Clamp", "post_op.3.clamp"), ("Add", "post_op.4.sum")]
    clamp = next(layer for layer in layers.values() if layer.get("type") == "Clamp")
    assert (clamp.find("data").get("min"), clamp.find("data").get("max")) == ("-2.0", "6.0")
    bias_values = layers[edges[(next(i for i, l in layers.items() if l.get("name") == "post_op.0.bias"), "1")]]
    assert bias_values.get("type") == "Const" and bias_values.find("data").get("shape") == "1,16,1,1"
    sum_input = layers[edges[(next(i for i, l in layers.items() if l.get("name") == "post_op.4.sum"), "1")]]
    assert sum_input.get("type") == "Parameter" and sum_input.find("data").get("shape") == "1,16,8,8"
    inputs = api.make_inputs(case)
    feed = render.render(case, inputs, tmp_path).feed(inputs)
    assert list(feed) == ["data", "post_op.4.sum.input"] and feed["post_op.4.sum.input"].shape == (1, 16, 8, 8)


def test_a_case_without_post_ops_renders_as_before():
    case = _case("[relu]")
    plain = load_cases_text(DEPTHWISE.replace("    post_ops: {post_ops}\n", ""), "<test>")[0]
    xml, _ = render.render_bytes(plain, api.make_inputs(plain))
    assert [layer.get("type") for layer in etree.fromstring(xml).iter("layer")] == [
        "Parameter", "Const", "GroupConvolution", "Result"]
    assert render.add_post_ops(None, plain, "the op", ()) == "the op" and case.post_ops


# --- the oracle: by hand -------------------------------------------------------------------

HAND = """\
op: GroupConvolution
cases:
  - name: hand
    data: [1, 2, 3]
    kernel: [2, 1, 1, 1]
    post_ops: [{bias: [1, -2]}, {batch_norm: {scale: [2, 3], shift: [0.5, -1]}}, relu, {clamp: {min: 1, max: 10}}]
"""


def test_oracle_applies_post_ops_as_computed_by_hand():
    case = load_cases_text(HAND, "<test>")[0]
    data = np.array([[[1, -2, 3], [4, 0, -1]]], dtype=np.float32)
    kernel = np.array([2, -1], dtype=np.float32).reshape(2, 1, 1, 1)
    reference = oracle.reference(case, Inputs(data, kernel))
    # conv [[2,-4,6],[-4,0,1]] -> +bias [[3,-3,7],[-6,-2,-1]] -> *[2,3] +[0.5,-1]
    # [[6.5,-5.5,14.5],[-19,-7,-4]] -> relu [[6.5,0,14.5],[0,0,0]] -> clamp 1..10
    np.testing.assert_array_equal(reference.output, [[[6.5, 1, 10], [1, 1, 1]]])
    np.testing.assert_array_equal(reference.op_output, [[[2, -4, 6], [-4, 0, 1]]])
    # sum|terms|: |x||w| [[2,4,6],[4,0,1]] -> +|b| [[3,5,7],[6,2,3]] -> *|a| +|c|; ReLU/Clamp keep it
    np.testing.assert_array_equal(reference.magnitude, [[[6.5, 10.5, 14.5], [19, 7, 10]]])


def test_sum_and_seeded_values_are_deterministic_and_fed(tmp_path):
    case = _case("[bias, sum]")
    first, again = post_ops.values(case), post_ops.values(_case("[bias, sum]"))
    np.testing.assert_array_equal(first[1]["addend"], again[1]["addend"])
    assert first[0]["shift"].shape == (16,) and set(np.unique(first[0]["shift"])) <= {-3, -2, -1, 1, 2, 3}
    inputs = api.make_inputs(case)
    reference = oracle.reference(case, inputs)
    expected = reference.op_output + first[0]["shift"].reshape(1, 16, 1, 1) + first[1]["addend"]
    np.testing.assert_array_equal(reference.output, expected)
    feed = render.render(case, inputs, tmp_path).feed(inputs)
    np.testing.assert_array_equal(feed["post_op.1.sum.input"], first[1]["addend"])


def test_streamed_oracle_applies_post_ops_slab_by_slab():
    case = _case("[batch_norm, sum, relu]")
    inputs = api.make_inputs(case)
    whole = oracle.reference(case, inputs)
    slabs = list(oracle.reference_slabs(case, inputs, planes=3))
    np.testing.assert_array_equal(np.concatenate([slab.output for slab in slabs], axis=2), whole.output)
    np.testing.assert_array_equal(np.concatenate([slab.magnitude for slab in slabs], axis=2), whole.magnitude)


# --- the tolerance ---------------------------------------------------------------------------

def test_tolerance_terms_count_roundings_and_separate_nodes():
    case = _case("[bias, batch_norm, relu, {clamp: {min: -1, max: 5}}, sum]")
    fused_all = {"not_fused_layers": []}
    terms = post_ops.tolerance_terms(case, fused_all)
    assert (terms.arithmetic, terms.intermediate) == (4, 0)   # Add, Multiply+Add, Add
    assert post_ops.tolerance_terms(case, {"not_fused_layers": ["post_op.4.sum"]}).intermediate == 1
    assert post_ops.tolerance_terms(case, None).intermediate == 6   # unknown: every layer on its own
    base = tolerance_for("bf16", 9, np.array([0.1]), element_type="f32")
    more = tolerance_for("bf16", 9, np.array([0.1]), element_type="f32", post_op_roundings=4,
                         intermediate_roundings=2)
    assert more.atol_scale == pytest.approx(base.atol_scale + 4 * UNIT_ROUNDOFF["bf16"] + 2 * base.rtol)
    assert "+ 4*u(bf16) + 2*rtol" in more.describe()


def test_saturating_post_ops_make_an_item_untrustworthy(tmp_path):
    case = _case("[{clamp: {min: 0, max: 0}}]")
    with pytest.raises(api.Untrustworthy, match="saturate 100% of the outputs"):
        api.check(case, CPU, tmp_path)
    assert post_ops.trust_problem(_case("[relu]"), oracle.reference(_case("[relu]"), api.make_inputs(
        _case("[relu]"))).op_output) is None


# --- against OpenVINO ------------------------------------------------------------------------

def test_fusion_record_classifies_fused_folded_and_separate_layers():
    case = _case("[bias, batch_norm, relu, sum]")
    record = post_ops.fusion_record(case, {"fused_layers": ["post_op.1.batch_norm.shift", "post_op.2.relu"],
                                           "separate_layers": ["post_op.3.sum"]})
    assert record == {"ops": ["bias", "batch_norm", "relu", "sum"], "fused": ["bias", "batch_norm", "relu"],
                      "not_fused": ["sum"], "folded": ["bias", "batch_norm"],
                      "not_fused_layers": ["post_op.3.sum"]}
    assert "run as separate nodes: sum" in post_ops.fusion_line(record)


def _runtime_nodes(outcome):
    from conformance import runtime
    compiled = runtime.core().compile_model(str(outcome.ir.xml_path), "CPU", CPU.config())
    nodes = []
    for node in compiled.get_runtime_model().get_ordered_ops():
        info = node.get_rt_info()
        names = info["originalLayersNames"].astype(str).split(",") if "originalLayersNames" in info else []
        nodes.append((info["layerType"].astype(str), names))
    return nodes


@pytest.mark.parametrize("op_text", [DEPTHWISE, DEPTHWISE.replace("GroupConvolution", "GroupConvolutionBackpropData")
                                     .replace("pads_begin: 1", "strides: 2\n    pads_begin: 1")])
def test_fused_flag_agrees_with_the_compiled_runtime_model(tmp_path, op_text):
    case = _case("[relu, sum]", op_text)
    outcome = api.check(case, CPU, tmp_path)
    assert outcome.verdict.passed
    record = outcome.run.extra["post_ops"]
    assert record["ops"] == ["relu", "sum"] and sorted(record["fused"] + record["not_fused"]) == ["relu", "sum"]
    assert outcome.run.layer_type in ("Convolution", "Deconvolution")
    nodes = _runtime_nodes(outcome)
    primitive = next(names for layer_type, names in nodes if layer_type == outcome.run.layer_type)
    for label, layer in (("relu", "post_op.0.relu"), ("sum", "post_op.1.sum")):
        alone = any(layer in names for layer_type, names in nodes if names is not primitive
                    and layer_type not in ("Reorder", "Input", "Output"))
        assert (label in record["not_fused"]) == alone, (label, nodes)
        assert (label in record["fused"]) == (layer in primitive), (label, nodes)


def test_op_node_is_found_when_a_folded_multiply_renamed_it(tmp_path):
    """A Multiply folded into the weights rebuilds the convolution under the Multiply's name: the
    op's node (primitive, layer type) is still found, from the data input."""
    case = _case("[bias, batch_norm]")
    outcome = api.check(case, CPU, tmp_path)
    assert outcome.verdict.passed and outcome.run.layer_type == "Convolution" and outcome.run.primitive_type
    assert set(outcome.run.extra["post_ops"]["fused"]) == {"bias", "batch_norm"}


def test_a_planted_wrong_post_op_oracle_is_caught(tmp_path, monkeypatch):
    case = _case("[bias, relu]")
    real = post_ops.values

    def reversed_bias(case):   # the bias applied to the channels in reverse order
        values = real(case)
        return ({"shift": values[0]["shift"][::-1].copy()},) + values[1:] if case.post_ops else values

    monkeypatch.setattr(post_ops, "values", reversed_bias)
    inputs = api.make_inputs(case)
    wrong = oracle.reference(case, inputs)
    monkeypatch.setattr(post_ops, "values", real)
    outcome = api.check(case, CPU, tmp_path, inputs=inputs, expected=wrong)
    assert not outcome.verdict.passed and outcome.verdict.mismatches > outcome.verdict.total // 4
    assert api.check(case, CPU, tmp_path, inputs=inputs).verdict.passed


def test_per_group_check_slices_the_post_ops(tmp_path):
    case = _case("[bias, batch_norm, sum, relu]", DEPTHWISE.replace("[1, 16, 8, 8]", "[1, 12, 6, 6]")
                 .replace("[16, 1, 1, 3, 3]", "[3, 2, 4, 3, 3]"))
    (step,) = api.prepare(case)
    check = api.check_per_group(case, CPU, step.inputs, step.reference, tmp_path)
    assert (check.groups, check.passed) == (3, True), check.describe()


def test_streamed_check_with_post_ops_passes(tmp_path):
    case = _case("[bias, sum, {clamp: {min: -8, max: 9}}]")
    outcome = api.check(case, CPU, tmp_path, stream=True)
    assert outcome.streamed and outcome.verdict.passed, outcome.describe()


def test_shipped_post_op_cases_cover_every_post_op_on_both_grouped_ops():
    cases = api.load_cases(CASES / "post_ops", root=CASES)
    kinds = {(case.op, post_op.kind) for case in cases for post_op in case.post_ops}
    assert kinds == {(op, kind) for op in ("GroupConvolution", "GroupConvolutionBackpropData")
                     for kind in post_ops.KINDS}
    alone = {(case.op, case.post_ops[0].kind) for case in cases if len(case.post_ops) == 1}
    assert alone == kinds
    regressions = api.load_cases(CASES / "regressions" / "post_ops_backprop_data.yaml", root=CASES)
    assert all(case.origin for case in regressions) and any(case.post_ops for case in regressions)


def test_shipped_cases_run_and_the_report_shows_fusion(pytester, monkeypatch):
    text = (CASES / "post_ops" / "group_convolution.yaml").read_text()
    subprocess_project(pytester, monkeypatch, {"post_ops.yaml": text})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-k", "depthwise_bn_relu6 or grouped_combined")
    result.assert_outcomes(passed=4)
    items = read_json(pytester.path / "reports" / "conformance.json")["items"]
    for item in items:
        record = item["run"]["post_ops"]
        assert record["ops"] and sorted(record["fused"] + record["not_fused"]) == sorted(record["ops"])
    html = (pytester.path / "reports" / "conformance.html").read_text()
    assert 'class="post-ops"' in html and "post-ops: +" in html


def test_failure_message_names_the_post_ops_and_their_fusion(pytester, monkeypatch):
    """A planted wrong bias in the oracle (the seeded values shifted by one) fails the item; the
    message lists the post-ops and which ran fused."""
    case_text = DEPTHWISE.format(post_ops="[bias, relu]")
    subprocess_project(pytester, monkeypatch, {"wrong.yaml": case_text})
    pytester.makeconftest("""
import numpy as np
from conformance import oracle, post_ops
real = post_ops.apply
def shifted(case, output, magnitude, planes=None):
    output, magnitude = real(case, output, magnitude, planes)
    return output + 1.0, magnitude
post_ops.apply = shifted
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*post_ops=bias,relu*", "*post-ops bias, relu: fused into the op's primitive: *"])


def test_upstream_report_keeps_the_post_ops():
    """The upstream report's case file and benchdnn line carry the post-ops (a leading bias is
    benchdnn's FWD_B; BatchNorm its per-channel binary mul/add)."""
    from conformance import upstream
    case = _case("[{bias: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16]}, batch_norm, relu, "
                 "{clamp: {min: -1.5, max: 6}}, sum]")
    text = upstream.case_yaml(case)
    assert load_cases_text(text, "<again>")[0].post_ops == case.post_ops
    line = upstream.benchdnn_command(case)
    assert "--dir=FWD_B" in line and ("--attr-post-ops=mul:f32:per_oc+add:f32:per_oc+relu+clip:-1.5:6+sum "
                                      in line)
    assert "--dir=FWD_I" in upstream.benchdnn_command(_case("[relu, bias]"))
