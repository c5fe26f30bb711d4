"""Element types, dynamic shapes and runtime inputs: the case fields, the IR they render to, and
how a sequence of inferences is checked (issue 5)."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from lxml import etree

from conformance import api
from conformance.case import CaseError, load_cases_text
from conformance.inputs import make_inputs
from conformance.render import render_bytes


def _cases(text: str, op: str = "GroupConvolution"):
    return load_cases_text(f"op: {op}\ncases:\n" + text, "t.yaml")


@pytest.mark.parametrize("text, field, message", [
    ("    element_type: f8\n", "element_type", "unknown value 'f8'"),
    ("    precisions: [f32, i8]\n", "precisions", "expected a list of"),
    ("    tolerance: {scale: 4}\n", "tolerance", "reason"),
    ("    tolerance: {scale: 0.5, reason: because}\n", "tolerance", "scale"),
    ("    element_type: i8\n    fill: uniform\n", "fill", "needs fill: integers"),
    ("    infer_shapes: [[1, 4, 5, 5]]\n", "infer_shapes", "needs dynamic dims"),
    ("    kernel_input: weights\n", "kernel_input", "unknown value"),
    ("    allow_sparse_output: ''\n", "allow_sparse_output", "reason"),
])
def test_numerics_fields_are_checked(text, field, message):
    with pytest.raises(CaseError) as error:
        _cases("  - name: a\n    data: [1, 4, 5, 5]\n    kernel: [2, 2, 2, 3, 3]\n" + text)
    assert error.value.field == field and message in str(error.value)


@pytest.mark.parametrize("data, shapes, message", [
    ("[1, -1, 5, 5]", "[[1, 4, 5, 5]]", "channel dim must be static"),
    ("[1, 4, -1, 5]", None, "list the concrete shapes"),
    ("[1, 4, '2..6', 5]", "[[1, 4, 7, 5]]", "does not fit"),
    ("[1, 4, '6..2', 5]", "[[1, 4, 3, 5]]", "dynamic: -1 or 'low..high'"),
    ("[1, 4, -1, 5]", "[[1, 4, 1, 5]]", "output shape would be"),
])
def test_dynamic_data_is_checked(data, shapes, message):
    text = f"  - name: a\n    data: {data}\n    kernel: [2, 2, 2, 3, 3]\n"
    text += f"    infer_shapes: {shapes}\n" if shapes else ""
    with pytest.raises(CaseError, match=message.replace("(", r"\(").replace(".", r"\.")):
        _cases(text)


def _ir(case) -> etree._Element:
    xml, _ = render_bytes(case, make_inputs(case))
    return etree.fromstring(xml)


@pytest.mark.parametrize("element_type, precision, size", [
    ("f16", "FP16", 2), ("bf16", "BF16", 2), ("f64", "FP64", 8), ("i32", "I32", 4), ("u8", "U8", 1)])
def test_element_type_reaches_every_port_and_the_weights(element_type, precision, size):
    [case] = _cases(f"  - name: a\n    data: [1, 4, 5, 5]\n    kernel: [2, 2, 2, 3, 3]\n"
                    f"    element_type: {element_type}\n")
    net = _ir(case)
    assert {port.get("precision") for port in net.iter("port")} == {precision}
    const = net.find(".//layer[@type='Const']/data")
    assert const.get("element_type") == element_type and int(const.get("size")) == size * 2 * 2 * 2 * 9


def test_runtime_inputs_and_dynamic_dims_render_as_parameters():
    [case] = _cases("""
  - name: a
    data: [-1, 4, '2..16', -1]
    kernel: [2, 2, 2, 3, 3]
    strides: [2, 2]
    output_shape: [9, 9]
    kernel_input: parameter
    output_shape_input: parameter
    infer_shapes: [[1, 4, 5, 5], [2, 4, 4, 5]]
""", "GroupConvolutionBackpropData")
    net = _ir(case)
    parameters = {layer.get("name"): layer for layer in net.iter("layer") if layer.get("type") == "Parameter"}
    assert set(parameters) == {"data", "kernel", "output_shape"}
    assert parameters["data"].find("data").get("shape") == "-1,4,2..16,-1"
    assert parameters["output_shape"].find("data").get("element_type") == "i64"
    assert not [layer for layer in net.iter("layer") if layer.get("type") == "Const"]
    result_dims = [dim.text for dim in net.find(".//layer[@type='Result']/input/port").iter("dim")]
    assert result_dims == ["-1", "4", "-1", "-1"]


def test_dynamic_sequence_reports_the_step_that_fails(tmp_path, monkeypatch):
    """One compiled model, every shape compared; a wrong second output names its data shape."""
    [case] = _cases("""
  - name: a
    data: [1, 4, -1, -1]
    kernel: [2, 2, 2, 3, 3]
    infer_shapes: [[1, 4, 5, 5], [1, 4, 7, 4], [1, 4, 5, 5]]
""")
    outcome = api.check(case, api.Target("CPU", "f32"), tmp_path)
    assert outcome.verdict.passed and len(outcome.verdicts) == 3
    assert [v.expected_shape for v in outcome.verdicts] == [(1, 4, 3, 3), (1, 4, 5, 2), (1, 4, 3, 3)]
    original = api.run

    def corrupt_second(ir, feeds, target, *args, **kwargs):
        result = original(ir, feeds, target, *args, **kwargs)
        outputs = list(result.outputs)
        outputs[1] = outputs[1].copy()
        outputs[1].flat[3] += 1
        return dataclasses.replace(result, outputs=tuple(outputs))

    monkeypatch.setattr(api, "run", corrupt_second)
    outcome = api.check(case, api.Target("CPU", "f32"), tmp_path)
    assert not outcome.verdict.passed and outcome.step_index == 1
    text = outcome.describe()
    assert "inference 2/3 data=[1, 4, 7, 4]: FAILED" in text and "inference 3/3 data=[1, 4, 5, 5]: ok" in text


def test_runtime_weights_are_fed_and_compared(tmp_path):
    [case] = _cases("""
  - name: a
    data: [1, 4, 5, 5]
    kernel: [2, 2, 2, 3, 3]
    kernel_input: parameter
    fill: uniform
""")
    steps = api.prepare(case)
    assert set(api.feeds(api.render(case, steps[0].inputs, tmp_path), steps)[0]) == {"data", "kernel"}
    outcome = api.check(case, api.Target("CPU", "f32"), tmp_path, steps=steps)
    assert outcome.verdict.passed, outcome.verdict.describe()
    assert np.array_equal(steps[0].inputs.kernel, make_inputs(case).kernel)
