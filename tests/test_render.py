"""render.py: the IR written to disk loads with openvino.Core().read_model and says what the case says."""
from __future__ import annotations

import numpy as np
import openvino as ov
import pytest
from lxml import etree

from conformance import api
from conformance.case import load_cases_text


def one_case(text: str):
    (case,) = load_cases_text(text)
    return case


CONV = one_case("""\
op: GroupConvolution
cases:
  - name: conv
    data: [2, 6, 7, 8]
    kernel: [3, 4, 2, 3, 2]
    strides: [2, 1]
    pads_begin: [1, 0]
    pads_end: [0, 2]
    dilations: [1, 2]
""")

BACKPROP = one_case("""\
op: GroupConvolutionBackpropData
cases:
  - name: backprop
    data: [1, 4, 3, 4, 5]
    kernel: [2, 2, 3, 2, 3, 2]
    strides: [2, 2, 3]
    pads_begin: [1, 0, 1]
    pads_end: [0, 1, 1]
    dilations: [1, 2, 1]
    output_padding: [1, 0, 2]
""")

BACKPROP_OUTPUT_SHAPE = one_case("""\
op: GroupConvolutionBackpropData
cases:
  - name: backprop_output_shape
    data: [1, 4, 5]
    kernel: [2, 2, 1, 3]
    strides: [2]
    output_shape: [8]
    auto_pad: valid
""")


def load(case, tmp_path):
    inputs = api.make_inputs(case)
    ir = api.render(case, inputs, tmp_path)
    model = ov.Core().read_model(str(ir.xml_path), str(ir.bin_path))
    nodes = {node.get_friendly_name(): node for node in model.get_ordered_ops()}
    return inputs, ir, model, nodes


def shape(output) -> list[int]:
    return [dim.get_length() for dim in output.get_partial_shape()]


@pytest.mark.parametrize("case", [CONV, BACKPROP], ids=lambda case: case.name)
def test_round_trip_op_type_attributes_shapes_and_weights(case, tmp_path):
    inputs, ir, model, nodes = load(case, tmp_path)
    op = nodes["op"]
    assert op.get_type_name() == case.op
    attributes = op.get_attributes()
    assert attributes["strides"] == list(case.strides)
    assert attributes["pads_begin"] == list(case.pads_begin)
    assert attributes["pads_end"] == list(case.pads_end)
    assert attributes["dilations"] == list(case.dilations)
    assert attributes["auto_pad"] == "explicit"
    if case.output_padding is not None:
        assert attributes["output_padding"] == list(case.output_padding)
    # The data is the model's one input, the kernel a constant, and shapes are the case's.
    (parameter,) = model.get_parameters()
    assert shape(parameter.output(0)) == list(case.data_shape)
    assert model.input(0).get_any_name() == ir.input_name
    assert shape(op.input_value(1)) == list(case.kernel_shape)
    assert shape(model.output(0)) == list(case.geometry().output_shape)
    assert model.output(0).get_any_name() == ir.output_name
    kernel = nodes["kernel"]
    assert kernel.get_type_name() == "Constant"
    assert np.array_equal(kernel.get_data(), inputs.kernel)
    assert op.input_value(1).get_node().get_friendly_name() == "kernel"
    assert op.get_input_size() == 2


def test_output_shape_is_a_third_i64_constant_input(tmp_path):
    case = BACKPROP_OUTPUT_SHAPE
    _, _, model, nodes = load(case, tmp_path)
    op = nodes["op"]
    assert op.get_input_size() == 3
    constant = op.input_value(2).get_node()
    assert constant.get_type_name() == "Constant" and constant.get_friendly_name() == "output_shape"
    assert constant.get_element_type() == ov.Type.i64
    assert constant.get_data().tolist() == [8]
    assert op.get_attributes()["auto_pad"] == "valid"
    assert shape(model.output(0)) == [1, 2, 8]


def test_xml_is_ir_v11_with_the_case_attributes_verbatim(tmp_path):
    _, ir, _, _ = load(BACKPROP, tmp_path)
    root = etree.parse(str(ir.xml_path)).getroot()
    assert root.tag == "net" and root.get("version") == "11"
    (layer,) = root.findall("layers/layer[@type='GroupConvolutionBackpropData']")
    data = layer.find("data")
    assert dict(data.attrib) == {"strides": "2,2,3", "pads_begin": "1,0,1", "pads_end": "0,1,1",
                                 "dilations": "1,2,1", "auto_pad": "explicit", "output_padding": "1,0,2"}
    assert [int(dim.text) for dim in layer.findall("output/port/dim")] == list(BACKPROP.geometry().output_shape)
    assert len(root.findall("edges/edge")) == 3           # data -> op, kernel -> op, op -> result


def test_rendering_is_deterministic_and_named_by_digest(tmp_path):
    inputs = api.make_inputs(CONV)
    first = api.render(CONV, inputs, tmp_path)
    second = api.render(CONV, api.make_inputs(CONV), tmp_path)
    assert first.xml_path == second.xml_path and first.digest == second.digest
    assert first.xml_path.name == f"{first.digest}.xml" and first.bin_path.name == f"{first.digest}.bin"
    other = api.render(CONV, api.Inputs(inputs.data, inputs.kernel + 1), tmp_path)
    assert other.digest != first.digest                    # the weights are part of the identity


def test_the_rendered_ir_is_what_runs(tmp_path):
    """Infer the rendered model directly: it equals the oracle for this case."""
    inputs, ir, model, _ = load(CONV, tmp_path)
    compiled = ov.Core().compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    output = compiled({ir.input_name: inputs.data})[compiled.output(0)]
    assert np.array_equal(output, api.reference(CONV, inputs).output)


RUNTIME_INPUTS = one_case("""\
op: GroupConvolutionBackpropData
cases:
  - name: fed
    data: [1, 4, '3..12', 6]
    kernel: [2, 2, 3, 2, 2]
    strides: 2
    output_shape: [11, 13]
    kernel_input: parameter
    output_shape_input: parameter
    infer_shapes: [[1, 4, 5, 6]]
""")


@pytest.mark.parametrize("case", [CONV, BACKPROP, RUNTIME_INPUTS], ids=["conv", "backprop", "fed"])
def test_the_rendered_ir_records_its_runtime_inputs_as_written(case, tmp_path):
    """RenderedIR.runtime_inputs are the document's Parameters (name, element type, dims), and
    RenderedIR.feed feeds exactly them: nothing downstream works out which inputs an IR takes."""
    inputs = api.make_inputs(case)
    ir = api.render(case, inputs, tmp_path)
    net = etree.parse(str(ir.xml_path)).getroot()
    declared = [(layer.get("name"), layer.find("data").get("element_type"), layer.find("data").get("shape"))
                for layer in net.iter("layer") if layer.get("type") == "Parameter"]
    assert [(item.name, item.element_type, ",".join(map(str, item.dims))) for item in ir.runtime_inputs] == declared
    feed = ir.feed(inputs)
    assert list(feed) == [name for name, _, _ in declared] == list(ir.parameters)
    assert feed["data"] is inputs.data
    if case is RUNTIME_INPUTS:
        assert ir.input_types == (("data", "f32"), ("kernel", "f32"), ("output_shape", "i64"))
        assert feed["kernel"] is inputs.kernel
        assert feed["output_shape"].dtype == np.int64 and feed["output_shape"].tolist() == [11, 13]
    else:
        assert ir.input_types == (("data", "f32"),)
