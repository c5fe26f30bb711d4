"""One convolution written in spec, PyTorch and MATLAB style renders the same IR;
PyTorch-style cases compute what torch.nn itself computes."""
from __future__ import annotations

import re
import textwrap

import numpy as np
import pytest
import torch

from conformance.case import CaseError, load_cases_text
from conformance.inputs import make_inputs
from conformance.oracle import reference
from conformance.render import render_bytes

# The README's "Writing cases" example, in the three styles (keep the two in sync).
SPEC = """\
op: GroupConvolution
cases:
  - name: grouped_3x3_stride2
    data: [1, 8, 10, 9]          # [N, GROUPS*C_IN, Y, X]
    kernel: [4, 3, 2, 3, 3]      # [GROUPS, C_OUT, C_IN, KY, KX]
    strides: [2, 2]
    pads_begin: [1, 1]
    pads_end: [1, 1]
    seed: 7
"""
PYTORCH = """\
op: GroupConvolution
cases:
  - name: grouped_3x3_stride2
    style: pytorch               # nn.Conv2d(8, 12, kernel_size=3, stride=2, padding=1, groups=4)
    input_shape: [1, 8, 10, 9]   # [N, C, H, W]
    in_channels: 8
    out_channels: 12
    groups: 4
    kernel_size: 3
    stride: 2
    padding: 1
    seed: 7
"""
MATLAB = """\
op: GroupConvolution
cases:
  - name: grouped_3x3_stride2
    style: matlab                # groupedConvolution2dLayer(3, 3, 4, 'Stride', 2, 'Padding', 1)
    InputSize: [10, 9, 8]        # [H W C]
    FilterSize: 3
    NumFiltersPerGroup: 3
    NumGroups: 4
    Stride: 2
    Padding: 1
    seed: 7
"""


def _ir(text: str):
    [case] = load_cases_text(text, "three.yaml")
    xml, weights = render_bytes(case, make_inputs(case))
    return case, xml.decode(), weights


def test_three_styles_render_identical_ir():
    forms = [_ir(SPEC), _ir(PYTORCH), _ir(MATLAB)]
    assert forms[0][1] == forms[1][1] == forms[2][1]  # XML: attributes, shapes, names
    assert forms[0][2] == forms[1][2] == forms[2][2]  # weights: the kernel layouts agree
    assert 'strides="2,2" pads_begin="1,1" pads_end="1,1" dilations="1,1" auto_pad="explicit"' in forms[0][1]
    assert forms[0][0].kernel_shape == (4, 3, 2, 3, 3)


def test_same_padding_in_three_styles_is_explicit_with_the_odd_unit_at_the_end():
    torch_same = PYTORCH.replace("stride: 2", "stride: 1").replace("padding: 1", "padding: same") \
        .replace("kernel_size: 3", "kernel_size: [3, 4]")
    matlab_same = MATLAB.replace("Stride: 2", "Stride: 1").replace("FilterSize: 3", "FilterSize: [3, 4]") \
        .replace("Padding: 1", "Padding: same")
    spec_same = SPEC.replace("strides: [2, 2]", "strides: [1, 1]").replace("pads_end: [1, 1]", "pads_end: [1, 2]") \
        .replace("[4, 3, 2, 3, 3]", "[4, 3, 2, 3, 4]")
    forms = [_ir(spec_same), _ir(torch_same), _ir(matlab_same)]
    assert forms[0][1] == forms[1][1] == forms[2][1]
    assert 'pads_begin="1,1" pads_end="1,2"' in forms[0][1]


def test_matlab_same_with_stride_gives_asymmetric_explicit_pads():
    # 10x9, k3, stride 2: output 5x5; totals 1 (H: bottom) and 2 (W: one each side).
    case, xml, _ = _ir(MATLAB.replace("Padding: 1", "Padding: same"))
    assert (case.pads_begin, case.pads_end) == ((0, 1), (1, 1))
    assert case.geometry().output_shape == (1, 12, 5, 5)
    spec = SPEC.replace("pads_begin: [1, 1]", "pads_begin: [0, 1]")
    assert _ir(spec)[1] == xml


def _torch_module(case, style_values):
    """The torch.nn module a PyTorch-style case describes, with the case's kernel loaded."""
    rank = case.spatial_rank
    transposed = case.op == "GroupConvolutionBackpropData"
    cls = getattr(torch.nn, f"ConvTranspose{rank}d" if transposed else f"Conv{rank}d")
    kwargs = {k: v for k, v in style_values.items() if k in (
        "in_channels", "out_channels", "kernel_size", "stride", "padding", "dilation", "groups", "output_padding")}
    kwargs = {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}
    module = cls(**kwargs, bias=False).double()
    kernel = torch.from_numpy(make_inputs(case).kernel.astype(np.float64))
    with torch.no_grad():
        module.weight.copy_(kernel.reshape(module.weight.shape))  # the weight-layout relation under test
    return module


@pytest.mark.filterwarnings("ignore:Using padding='same'")
@pytest.mark.parametrize("op,values", [
    ("GroupConvolution", dict(input_shape=[2, 6, 9, 8], in_channels=6, out_channels=4, groups=2, kernel_size=[3, 2],
                              stride=[2, 1], padding=[1, 0], dilation=[1, 2])),
    ("GroupConvolution", dict(input_shape=[1, 4, 8, 7], in_channels=4, out_channels=8, groups=4, kernel_size=4,
                              padding="same", dilation=[2, 1])),
    ("GroupConvolution", dict(input_shape=[1, 8, 11], in_channels=8, out_channels=4, groups=4, kernel_size=5,
                              padding="valid", stride=3)),
    ("GroupConvolution", dict(input_shape=[1, 4, 5, 4, 6], in_channels=4, out_channels=4, groups=2, kernel_size=3,
                              padding="same")),
    ("GroupConvolutionBackpropData", dict(input_shape=[1, 6, 5, 4], in_channels=6, out_channels=4, groups=2,
                                          kernel_size=3, stride=2, padding=1, output_padding=1)),
    ("GroupConvolutionBackpropData", dict(input_shape=[2, 4, 7], in_channels=4, out_channels=8, groups=4,
                                          kernel_size=4, stride=3, padding=2, dilation=2, output_padding=[1])),
])
def test_pytorch_style_computes_what_torch_nn_computes(op, values):
    body = "\n".join(f"    {key}: {value}" for key, value in values.items())
    [case] = load_cases_text(f"op: {op}\ncases:\n  - name: t\n    style: pytorch\n{body}\n", "t.yaml")
    module = _torch_module(case, values)
    data = make_inputs(case).data.astype(np.float64)
    with torch.no_grad():
        expected = module(torch.from_numpy(data)).numpy()
    np.testing.assert_array_equal(reference(case, make_inputs(case)).output, expected)


@pytest.mark.parametrize("size,kernel,stride,dilation", [
    (10, 3, 2, 1), (9, 3, 2, 1), (7, 4, 1, 1), (8, 3, 3, 2), (5, 1, 2, 1), (6, 5, 4, 1)])
def test_matlab_same_is_ceil_in_over_stride_with_odd_unit_at_bottom_right(size, kernel, stride, dilation):
    text = textwrap.dedent(f"""\
        op: GroupConvolution
        cases:
          - name: m
            style: matlab
            InputSize: [{size}, {size + 1}, 2]
            FilterSize: {kernel}
            NumFiltersPerGroup: 1
            NumGroups: channelwise
            Stride: {stride}
            DilationFactor: {dilation}
            Padding: same
        """)
    [case] = load_cases_text(text, "m.yaml")
    assert case.geometry().output_shape[2:] == (-(-size // stride), -(-(size + 1) // stride))
    for begin, end in zip(case.pads_begin, case.pads_end):
        assert end - begin in (0, 1)  # the odd unit at the end (bottom/right)
    # ... which is the spec's same_upper, so the explicit pads equal what same_upper computes.
    same_upper = load_cases_text(text.replace("Padding: same", "Padding: 0"), "m.yaml")[0]
    geometry = type(same_upper)(**{**same_upper.__dict__, "auto_pad": "same_upper"}).geometry()
    assert (geometry.pads_begin, geometry.pads_end) == (case.pads_begin, case.pads_end)


def test_matlab_padding_forms_and_channelwise():
    base = "op: GroupConvolution\ncases:\n  - name: m\n    style: matlab\n    InputSize: [6, 7, 3]\n" \
           "    FilterSize: [2, 3]\n    NumFiltersPerGroup: 2\n    NumGroups: channelwise\n"
    [case] = load_cases_text(base + "    Padding: [1 2 3 4]\n".replace(" 2 3 4]", ", 2, 3, 4]"), "m.yaml")
    assert (case.pads_begin, case.pads_end) == ((1, 3), (2, 4))  # [t b l r]
    assert case.kernel_shape == (3, 2, 1, 2, 3) and case.data_shape == (1, 3, 6, 7)
    [case] = load_cases_text(base + "    Padding: [1, 2]\n    BatchSize: 2\n", "m.yaml")
    assert (case.pads_begin, case.pads_end) == ((1, 2), (1, 2)) and case.data_shape[0] == 2  # [a b]


@pytest.mark.parametrize("extra,line,field,fragment", [
    ("    PaddingValue: 1\n", 9, "PaddingValue", "cannot be expressed: GroupConvolution pads with zeros only"),
    ("    PaddingValue: replicate\n", 9, "PaddingValue", "cannot be expressed"),
    ("    Padding: [1, 2, 3]\n", 9, "Padding", "has 3 values; allowed: p, [a b], [t b l r] or same"),
    ("    Padding: valid\n", 9, "Padding", "unknown value 'valid'; allowed: a non-negative integer p"),
])
def test_matlab_style_errors(extra, line, field, fragment):
    base = "op: GroupConvolution\ncases:\n  - name: m\n    style: matlab\n    InputSize: [6, 7, 4]\n" \
           "    FilterSize: 3\n    NumFiltersPerGroup: 2\n    NumGroups: 2\n"
    with pytest.raises(CaseError) as caught:
        load_cases_text(base + extra, "m.yaml")
    assert str(caught.value).startswith(f"m.yaml:{line}: {field}: ") and fragment in str(caught.value)


def test_torch_same_with_stride_is_refused_like_torch_does():
    with pytest.raises(CaseError, match=re.escape("t.yaml:9: padding: 'same' needs stride 1")):
        load_cases_text("op: GroupConvolution\ncases:\n  - name: t\n    style: pytorch\n    input_shape: [1, 2, 8]\n"
                        "    in_channels: 2\n    out_channels: 2\n    kernel_size: 3\n    padding: same\n"
                        "    stride: 2\n", "t.yaml")
    with pytest.raises(ValueError, match="padding='same' is not supported for strided convolutions"):
        torch.nn.Conv1d(2, 2, 3, stride=2, padding="same")
