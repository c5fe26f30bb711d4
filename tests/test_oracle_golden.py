"""The torch oracle against values computed by hand (each derivation is in the comment).

These pin the oracle (conformance/oracle.py) and the spec formulas it uses
(conformance/shapes.py) to numbers a reader can check on paper: the pads of
GroupConvolution, the crop of BackpropData, output_padding, and the spec's split of
total_padding when output_shape is given -- the reading the known OpenVINO
deviations in expected_failures.yaml are judged against.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance.case import load_cases_text
from conformance.inputs import Inputs
from conformance.oracle import reference


def spec_output(op: str, data, kernel, **attributes) -> np.ndarray:
    """The oracle's output for literal ``data``/``kernel`` (nested lists in the spec layouts)."""
    data, kernel = np.asarray(data, np.float32), np.asarray(kernel, np.float32)
    lines = [f"op: {op}", "cases:", "  - name: golden", f"    data: {list(data.shape)}",
             f"    kernel: {list(kernel.shape)}"]
    lines += [f"    {key}: {value}" for key, value in attributes.items()]
    (case,) = load_cases_text("\n".join(lines) + "\n")
    result = reference(case, Inputs(data, kernel))
    assert result.output.shape == case.geometry().output_shape
    return result.output


def conv(data, kernel, **attributes):
    return spec_output("GroupConvolution", data, kernel, **attributes)


def deconv(data, kernel, **attributes):
    return spec_output("GroupConvolutionBackpropData", data, kernel, **attributes)


# --- GroupConvolution --------------------------------------------------------------

def test_grouped_convolution_by_hand():
    # Two groups of one channel: channel 0 = [1, 2, 3, 4] with w = [1, -1]
    # -> [1-2, 2-3, 3-4]; channel 1 = [0, 1, 0, -1] with w = [2, 1] -> [0+1, 2+0, 0-1].
    # A group mix-up (channel 0 with group 1's kernel) would give [4, 7, 10].
    out = conv([[[1, 2, 3, 4], [0, 1, 0, -1]]], [[[[1, -1]]], [[[2, 1]]]])
    assert out.tolist() == [[[-1, -1, -1], [1, 2, -1]]]


def test_several_channels_per_group_by_hand():
    # One group, C_IN = 2, C_OUT = 2, 1x1 kernel: out[o] = sum_i w[o, i] * x[i].
    # x0 = [1, 2], x1 = [3, 4]; w = [[1, 10], [-1, 0]] -> out0 = x0 + 10*x1 = [31, 42],
    # out1 = -x0 = [-1, -2].
    out = conv([[[1, 2], [3, 4]]], [[[[1], [10]], [[-1], [0]]]])
    assert out.tolist() == [[[31, 42], [-1, -2]]]


@pytest.mark.parametrize("pads_begin, pads_end, expected", [
    # x = [1, 2, 3], w = [1, 10] (out[i] = p[i] + 10*p[i+1] over the padded input p)
    ([2], [0], [0, 10, 21, 32]),     # p = [0, 0, 1, 2, 3]
    ([0], [1], [21, 32, 3]),         # p = [1, 2, 3, 0]
    ([1], [2], [10, 21, 32, 3, 0]),  # p = [0, 1, 2, 3, 0, 0]
])
def test_asymmetric_pads(pads_begin, pads_end, expected):
    out = conv([[[1, 2, 3]]], [[[[1, 10]]]], pads_begin=pads_begin, pads_end=pads_end)
    assert out.ravel().tolist() == expected


@pytest.mark.parametrize("auto_pad, expected", [
    # x = [1, 2, 3, 4], K = 2, stride 1: output 4 needs total padding 1.
    ("same_upper", [21, 32, 43, 4]),   # the odd unit at the end:       p = [1, 2, 3, 4, 0]
    ("same_lower", [10, 21, 32, 43]),  # the odd unit at the beginning: p = [0, 1, 2, 3, 4]
    ("valid", [21, 32, 43]),           # no padding (the attribute pads are ignored)
    ("explicit", [10, 21, 32, 43, 4]),  # pads_begin = pads_end = 1: p = [0, 1, 2, 3, 4, 0]
])
def test_auto_pad(auto_pad, expected):
    out = conv([[[1, 2, 3, 4]]], [[[[1, 10]]]], auto_pad=auto_pad, pads_begin=[1], pads_end=[1])
    assert out.ravel().tolist() == expected


def test_stride_and_dilation():
    # x = [1..7], w = [1, 10], dilation 2: out[i] = x[i] + 10*x[i+2] = [31, 42, 53, 64, 75];
    # stride 2 keeps every second one.
    x = [[[1, 2, 3, 4, 5, 6, 7]]]
    assert conv(x, [[[[1, 10]]]], dilations=[2]).ravel().tolist() == [31, 42, 53, 64, 75]
    assert conv(x, [[[[1, 10]]]], dilations=[2], strides=[2]).ravel().tolist() == [31, 53, 75]


def test_2d_by_hand():
    # x = [[1, 2], [3, 4]], w = [[1, 0], [0, 1]] (adds the diagonal), pads 1 at the end
    # on both axes: padded [[1, 2, 0], [3, 4, 0], [0, 0, 0]] ->
    # [[1+4, 2+0], [3+0, 4+0]] = [[5, 2], [3, 4]].
    out = conv([[[[1, 2], [3, 4]]]], [[[[[1, 0], [0, 1]]]]], pads_end=[1, 1])
    assert out.tolist() == [[[[5, 2], [3, 4]]]]


# --- GroupConvolutionBackpropData ----------------------------------------------------

def test_transposed_convolution_by_hand():
    # Each input element scatters x[i]*w into out[i : i+3]:
    # 1*[2, 0, 1] at 0, 3*[2, 0, 1] at 1, 3*[2, 0, 1] at 2, 0 at 3 -> [2, 6, 7, 3, 3, 0].
    assert deconv([[[1, 3, 3, 0]]], [[[[2, 0, 1]]]]).ravel().tolist() == [2, 6, 7, 3, 3, 0]


def test_grouped_transposed_convolution_by_hand():
    # Group 0: x = [1, 2] with w = [1, 1] -> [1, 3, 2]; group 1: x = [1, -1] with
    # w = [1, 2] -> [1, 1, -2]. Kernel layout [GROUPS, C_IN, C_OUT, K].
    out = deconv([[[1, 2], [1, -1]]], [[[[1, 1]]], [[[1, 2]]]])
    assert out.tolist() == [[[1, 3, 2], [1, 1, -2]]]


def test_backprop_channels_layout_is_c_in_then_c_out():
    # One group, C_IN = 2, C_OUT = 1, K = 1: out = w[0,0]*x0 + w[1,0]*x1.
    # x0 = [1, 2], x1 = [3, 4], w = [[[1]], [[10]]] -> [31, 42]. Reading the kernel as
    # [C_OUT, C_IN] would need C_OUT = 2 output channels instead.
    out = deconv([[[1, 2], [3, 4]]], [[[[1]], [[10]]]])
    assert out.tolist() == [[[31, 42]]]


# x = [1, 2], w = [1, 1, 1], stride 2: full = [1, 1, 1+2, 2, 2] = [1, 1, 3, 2, 2] (length 5).
X, W = [[[1, 2]]], [[[[1, 1, 1]]]]


@pytest.mark.parametrize("attributes, expected", [
    ({}, [1, 1, 3, 2, 2]),
    ({"pads_begin": [1], "pads_end": [1]}, [1, 3, 2]),
    ({"pads_begin": [2], "pads_end": [0]}, [3, 2, 2]),
    # output_padding "unlocks" elements at the end: with pads_end 1 it gives back the real 2.
    ({"pads_begin": [1], "pads_end": [1], "output_padding": [1]}, [1, 3, 2, 2]),
    # past the end of the full result the unlocked element is 0.
    ({"pads_begin": [1], "pads_end": [0], "output_padding": [1]}, [1, 3, 2, 2, 0]),
    # auto_pad without output_shape: pads are 0, the attribute pads are ignored.
    ({"pads_begin": [1], "pads_end": [1], "auto_pad": "same_upper"}, [1, 1, 3, 2, 2]),
    ({"pads_begin": [1], "pads_end": [1], "auto_pad": "valid"}, [1, 1, 3, 2, 2]),
])
def test_backprop_pads_and_output_padding(attributes, expected):
    out = deconv(X, W, strides=[2], **attributes)
    assert out.ravel().tolist() == expected


@pytest.mark.parametrize("output_shape, auto_pad, expected", [
    # total = 5 - output_shape. same_upper: end = total//2, begin = total - end;
    # explicit/valid/same_lower: begin = total//2. The attribute pads (3, 3) are ignored.
    (5, "explicit", [1, 1, 3, 2, 2]),    # total 0
    (4, "explicit", [1, 1, 3, 2]),       # total 1: begin 0
    (4, "valid", [1, 1, 3, 2]),
    (4, "same_lower", [1, 1, 3, 2]),
    (4, "same_upper", [1, 3, 2, 2]),     # total 1: begin 1 (the spec formula's odd unit first)
    (3, "explicit", [1, 3, 2]),          # total 2: begin 1, end 1 for every auto_pad
    (3, "valid", [1, 3, 2]),
    (3, "same_upper", [1, 3, 2]),
    (3, "same_lower", [1, 3, 2]),
    (2, "explicit", [1, 3]),             # total 3: begin 1, end 2
    (2, "same_lower", [1, 3]),
    (2, "same_upper", [3, 2]),           # total 3: end 1, begin 2
])
def test_output_shape_split(output_shape, auto_pad, expected):
    out = deconv(X, W, strides=[2], output_shape=[output_shape], auto_pad=auto_pad,
                 pads_begin=[3], pads_end=[3])
    assert out.ravel().tolist() == expected


def test_output_shape_with_output_padding():
    # total = 5 - output_shape + output_padding = 5 - 4 + 1 = 2 -> begin 1: the result is
    # full[1:] extended by one zero = [1, 3, 2, 2].
    out = deconv(X, W, strides=[2], output_shape=[4], output_padding=[1])
    assert out.ravel().tolist() == [1, 3, 2, 2]


def test_output_shape_2d_splits_each_axis():
    # 1x1 kernel, stride 1 on a 3x3 input: full = x. output_shape [1, 2] -> total [2, 1]
    # -> explicit begin [1, 0]: rows 1..1, columns 0..1.
    x = [[[[1, 2, 3], [4, 5, 6], [7, 8, 9]]]]
    out = deconv(x, [[[[[1]]]]], output_shape=[1, 2])
    assert out.tolist() == [[[[4, 5]]]]
    out = deconv(x, [[[[[1]]]]], output_shape=[1, 2], auto_pad="same_upper")
    assert out.tolist() == [[[[5, 6]]]]                     # begin [1, 1]


# --- the edges the spec allows (sn-output-padding-range, sn-output-shape-beyond-full, sn-huge-strides)

@pytest.mark.parametrize("attributes, expected", [
    # x = [2, 3, 1], w = [1, -1], stride 2: full = [2, -2, 3, -3, 1, -1]; output_padding 3 >= stride
    # appends [0, 0, 0]: 9 elements.
    ({"strides": 2, "output_padding": 3}, [2, -2, 3, -3, 1, -1, 0, 0, 0]),
    # ... then pads 5/2 crop [2, -2, 3, -3, 1] and [0, 0]: [-1, 0].
    ({"strides": 2, "output_padding": 3, "pads_begin": 5, "pads_end": 2}, [-1, 0]),
    # pads_begin 7 crops past the full result, into the appended zeros: [0, 0].
    ({"strides": 2, "output_padding": 3, "pads_begin": 7, "pads_end": 0}, [0, 0]),
    # output_shape 8 > 6 (total -2): the formula gives pads -1/-1: one zero at each end.
    ({"strides": 2, "output_shape": [8], "auto_pad": "same_lower"}, [0, 2, -2, 3, -3, 1, -1, 0]),
    # output_shape 9 (total -3): same_upper: pads_end = -3 // 2 = -2, pads_begin = -1.
    ({"strides": 2, "output_shape": [9], "auto_pad": "same_upper"}, [0, 2, -2, 3, -3, 1, -1, 0, 0]),
    # ... every other auto_pad: pads_begin = -2, pads_end = -1.
    ({"strides": 2, "output_shape": [9], "auto_pad": "valid"}, [0, 0, 2, -2, 3, -3, 1, -1, 0]),
])
def test_backprop_edges_by_hand(attributes, expected):
    out = deconv([[[2, 3, 1]]], [[[[1, -1]]]], **attributes)
    assert out.tolist() == [[expected]]


def test_backprop_crop_into_output_padding_by_hand():
    # data [1,1,1] = [5], one weight 2, stride 3: full [10], output_padding 2 -> [10, 0, 0];
    # pads_begin 2 crops [10, 0]: the spec's output is [0] (the case that used to raise in torch).
    out = deconv([[[5]]], [[[[2]]]], strides=3, pads_begin=2, pads_end=0, output_padding=2)
    assert out.tolist() == [[[0]]]


def test_convolution_huge_stride_by_hand():
    # x = [1, 2, 3, 4, 5], w = [1, 10], stride 2**40, pads 1/0: one window, p[0..1] = [0, 1] -> 10.
    out = conv([[[1, 2, 3, 4, 5]]], [[[[1, 10]]]], strides=2 ** 40, pads_begin=1, pads_end=0)
    assert out.tolist() == [[[10]]]


def test_backprop_huge_stride_by_hand():
    # x = [2, 3, 1], w = [1, -1], stride 2**40: the copies of w land 2**40 apart (full length 2**41 + 2);
    # pads_begin 2**40 - 1 starts one before x[1]'s copy, pads_end 2**40 leaves 3: [0, 3, -3].
    # (No memory budget: case.footprint_bytes counts the full result, which the oracle never builds.)
    (case,) = load_cases_text("op: GroupConvolutionBackpropData\ncases:\n  - {name: golden, data: [1, 1, 3], "
                              "kernel: [1, 1, 1, 2], strides: 1099511627776, pads_begin: 1099511627775, "
                              "pads_end: 1099511627776}\n", memory_budget=None)
    out = reference(case, Inputs(np.array([[[2, 3, 1]]], np.float32), np.array([[[[1, -1]]]], np.float32)))
    assert out.output.tolist() == [[[0, 3, -3]]]
