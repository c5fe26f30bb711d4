"""Hand-computed values pin both oracles to arithmetic, not to each other.

Every expected array below was worked out on paper (the working is in the
comments). Each example runs through the literal NumPy reference (vectorised
and element-by-element) and through the harness's torch oracle, built from a
case YAML exactly as the suite builds it.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import oracle
from conformance.case import load_cases_text
from conformance.inputs import Inputs
from tests import literal_reference as literal


def _case(op: str, data_shape, kernel_shape, **attributes):
    lines = [f"op: {op}", "cases:", "  - name: golden", f"    data: {list(data_shape)}",
             f"    kernel: {list(kernel_shape)}"]
    lines += [f"    {key}: {value if isinstance(value, str) else list(value)}" for key, value in attributes.items()]
    return load_cases_text("\n".join(lines) + "\n", "<golden>")[0]


def _torch(op, data, kernel, **attributes):
    data, kernel = np.asarray(data, dtype=np.float64), np.asarray(kernel, dtype=np.float64)
    case = _case(op, data.shape, kernel.shape, **attributes)
    return oracle.reference(case, Inputs(data, kernel)).output


def _literal(op, data, kernel, strides=None, pads_begin=None, pads_end=None, dilations=None,
             auto_pad="explicit", output_padding=None, output_shape=None):
    rank = np.asarray(data).ndim - 2
    ones, zeros = (1,) * rank, (0,) * rank
    common = (strides or ones, pads_begin or zeros, pads_end or zeros, dilations or ones)
    if op == "GroupConvolution":
        return literal.group_convolution(data, kernel, *common, auto_pad)
    return literal.group_convolution_backprop_data(data, kernel, *common, auto_pad, output_padding, output_shape)


def _scalar(op, data, kernel, strides=None, pads_begin=None, pads_end=None, dilations=None,
            output_padding=None):
    rank = np.asarray(data).ndim - 2
    ones, zeros = (1,) * rank, (0,) * rank
    common = (strides or ones, pads_begin or zeros, pads_end or zeros, dilations or ones)
    if op == "GroupConvolution":
        return literal.group_convolution_scalar(data, kernel, *common)
    return literal.group_convolution_backprop_data_scalar(data, kernel, *common, output_padding)


def _1d(values):
    """One batch, one channel, one spatial axis."""
    return np.asarray(values, dtype=np.float64).reshape(1, 1, -1)


def _1d_kernel(values):
    """GROUPS = C_OUT = C_IN = 1."""
    return np.asarray(values, dtype=np.float64).reshape(1, 1, 1, -1)


CONV, BACKPROP = "GroupConvolution", "GroupConvolutionBackpropData"

# (id, op, data, kernel, attributes, expected)
GOLDEN = [
    # out[o] = x[o]*1 + x[o+1]*0 + x[o+2]*(-1): 1-3, 2-4, 3-5
    ("conv1d_plain", CONV, _1d([1, 2, 3, 4, 5]), _1d_kernel([1, 0, -1]), {}, _1d([-2, -2, -2])),
    # padded [0,1,2,3,4,5,0]: 0-2, 1-3, 2-4, 3-5, 4-0
    ("conv1d_pads", CONV, _1d([1, 2, 3, 4, 5]), _1d_kernel([1, 0, -1]),
     {"pads_begin": [1], "pads_end": [1]}, _1d([-2, -2, -2, -2, 4])),
    # asymmetric: padded [0,0,1,2,3,4,5]: 0-1, 0-2, 1-3, 2-4, 3-5
    ("conv1d_asymmetric_pads", CONV, _1d([1, 2, 3, 4, 5]), _1d_kernel([1, 0, -1]),
     {"pads_begin": [2], "pads_end": [0]}, _1d([-1, -2, -2, -2, -2])),
    # stride 2, dilation 2, taps 0 and 2: x[2o] + x[2o+2] = 1+3, 3+5, 5+7; floor((7-3)/2)+1 = 3
    ("conv1d_stride2_dilation2", CONV, _1d([1, 2, 3, 4, 5, 6, 7]), _1d_kernel([1, 1]),
     {"strides": [2], "dilations": [2]}, _1d([4, 8, 12])),
    # same_upper: ceil(4/1)=4 outputs, total pad (4-1)+2-4 = 1 at the end: [1,2,3,4,0] * [1,10]
    ("conv1d_same_upper", CONV, _1d([1, 2, 3, 4]), _1d_kernel([1, 10]),
     {"auto_pad": "same_upper", "pads_begin": [7], "pads_end": [7]}, _1d([21, 32, 43, 4])),
    # same_lower: the one unit goes first: [0,1,2,3,4] * [1,10]
    ("conv1d_same_lower", CONV, _1d([1, 2, 3, 4]), _1d_kernel([1, 10]),
     {"auto_pad": "same_lower"}, _1d([10, 21, 32, 43])),
    # same_upper with stride 2: ceil(5/2)=3 outputs, total (3-1)*2+3-5 = 2 -> 1 and 1:
    # padded [0,1,2,3,4,5,0], windows at 0,2,4 with [1,1,1]: 0+1+2, 2+3+4, 4+5+0
    ("conv1d_same_upper_stride2", CONV, _1d([1, 2, 3, 4, 5]), _1d_kernel([1, 1, 1]),
     {"auto_pad": "same_upper", "strides": [2]}, _1d([3, 9, 9])),
    # valid ignores the attribute pads
    ("conv1d_valid", CONV, _1d([1, 2, 3, 4, 5]), _1d_kernel([1, 0, -1]),
     {"auto_pad": "valid", "pads_begin": [3], "pads_end": [3]}, _1d([-2, -2, -2])),
    # 2 groups, C_IN=1, C_OUT=2 (kernel [G, C_OUT, C_IN, X]):
    #   group 0 sees [1,2,3]: [1,1] -> 3,5 ; [1,-1] -> -1,-1
    #   group 1 sees [10,20,30]: [2,0] -> 20,40 ; [0,1] -> 20,30
    ("conv1d_two_groups", CONV, np.array([[[1, 2, 3], [10, 20, 30]]], dtype=float),
     np.array([[[[1, 1]], [[1, -1]]], [[[2, 0]], [[0, 1]]]], dtype=float), {},
     np.array([[[3, 5], [-1, -1], [20, 40], [20, 30]]], dtype=float)),
    # 1 group, C_IN=2, C_OUT=1: channels are summed: [1,2]*[1,1] + [10,20]*[0,1] = 3 + 20
    ("conv1d_channels_summed", CONV, np.array([[[1, 2], [10, 20]]], dtype=float),
     np.array([[[[1, 1], [0, 1]]]], dtype=float), {}, np.array([[[23]]], dtype=float)),
    # 2D identity-diagonal kernel: x[y,x] + x[y+1,x+1]
    ("conv2d_diagonal", CONV, np.arange(1, 10, dtype=float).reshape(1, 1, 3, 3),
     np.array([[1, 0], [0, 1]], dtype=float).reshape(1, 1, 1, 2, 2), {},
     np.array([[1 + 5, 2 + 6], [4 + 8, 5 + 9]], dtype=float).reshape(1, 1, 2, 2)),
    # 2D, strides differ per axis (2 along Y, 1 along X), kernel 1x2 [1,-1]: x[2y,x] - x[2y,x+1]
    ("conv2d_per_axis_strides", CONV, np.arange(1, 10, dtype=float).reshape(1, 1, 3, 3),
     np.array([[1, -1]], dtype=float).reshape(1, 1, 1, 1, 2), {"strides": [2, 1]},
     np.array([[-1, -1], [-1, -1]], dtype=float).reshape(1, 1, 2, 2)),
    # 3D: data 1..8 in a 2x2x2 cube, kernel all ones but the last tap -1: 36 - 2*8
    ("conv3d_one_output", CONV, np.arange(1, 9, dtype=float).reshape(1, 1, 2, 2, 2),
     np.array([1, 1, 1, 1, 1, 1, 1, -1], dtype=float).reshape(1, 1, 1, 2, 2, 2), {},
     np.array([20], dtype=float).reshape(1, 1, 1, 1, 1)),
    # The example: [1,3,3,0] transposed with [2,0,1]: y[j] = sum_i x[i] w[j-i]
    #   2, 3*2, 3*2+1*1, 3*1, 3*1, 0
    ("backprop1d_issue_example", BACKPROP, _1d([1, 3, 3, 0]), _1d_kernel([2, 0, 1]), {},
     _1d([2, 6, 7, 3, 3, 0])),
    # stride 2: x=[1,2] through [1,1,1]: 1 lands on 0,1,2 and 2 on 2,3,4 -> [1,1,3,2,2]
    ("backprop1d_stride2", BACKPROP, _1d([1, 2]), _1d_kernel([1, 1, 1]), {"strides": [2]},
     _1d([1, 1, 3, 2, 2])),
    # pads crop the full result: [1,1,3,2,2] minus one at each end
    ("backprop1d_pads", BACKPROP, _1d([1, 2]), _1d_kernel([1, 1, 1]),
     {"strides": [2], "pads_begin": [1], "pads_end": [1]}, _1d([1, 3, 2])),
    # output_padding gives back one element at the end: Y = 5 - 2 + 1 = 4, elements 1..4
    ("backprop1d_output_padding", BACKPROP, _1d([1, 2]), _1d_kernel([1, 1, 1]),
     {"strides": [2], "pads_begin": [1], "pads_end": [1], "output_padding": [1]}, _1d([1, 3, 2, 2])),
    # output_padding past the computed elements: Y = 5 + 1, the extra element is 0
    ("backprop1d_output_padding_zero", BACKPROP, _1d([1, 2]), _1d_kernel([1, 1, 1]),
     {"strides": [2], "output_padding": [1]}, _1d([1, 1, 3, 2, 2, 0])),
    # dilation 2: taps at 0 and 2: x=[1,2] through [1,10]: 1 -> 0 (1), 2 (10); 2 -> 1 (2), 3 (20)
    ("backprop1d_dilation2", BACKPROP, _1d([1, 2]), _1d_kernel([1, 10]), {"dilations": [2]},
     _1d([1, 2, 10, 20])),
    # same_upper without output_shape: pads are 0 (spec pseudo-code), attribute pads ignored
    ("backprop1d_same_upper_no_output_shape", BACKPROP, _1d([1, 2]), _1d_kernel([1, 1, 1]),
     {"strides": [2], "auto_pad": "same_upper", "pads_begin": [1], "pads_end": [1]}, _1d([1, 1, 3, 2, 2])),
    # output_shape 3: total = 5 - 3 = 2, begin = 1, end = 1 (pads attributes ignored)
    ("backprop1d_output_shape_explicit", BACKPROP, _1d([1, 2]), _1d_kernel([1, 1, 1]),
     {"strides": [2], "output_shape": [3], "pads_end": [2]}, _1d([1, 3, 2])),
    # output_shape 2: total 3; explicit/same_lower: begin = 3//2 = 1 -> elements 1,2
    ("backprop1d_output_shape_same_lower", BACKPROP, _1d([1, 2]), _1d_kernel([1, 1, 1]),
     {"strides": [2], "output_shape": [2], "auto_pad": "same_lower"}, _1d([1, 3])),
    # same_upper: end = 3//2 = 1, begin = 2 -> elements 2,3
    ("backprop1d_output_shape_same_upper", BACKPROP, _1d([1, 2]), _1d_kernel([1, 1, 1]),
     {"strides": [2], "output_shape": [2], "auto_pad": "same_upper"}, _1d([3, 2])),
    # 2D: x [[1,2],[3,4]] through a 2x2 of ones: each output sums the inputs covering it
    ("backprop2d_ones", BACKPROP, np.array([[1, 2], [3, 4]], dtype=float).reshape(1, 1, 2, 2),
     np.ones((1, 1, 1, 2, 2)), {},
     np.array([[1, 3, 2], [4, 10, 6], [3, 7, 4]], dtype=float).reshape(1, 1, 3, 3)),
    # 2 groups, C_IN=1, C_OUT=2 (kernel [G, C_IN, C_OUT, X]): group 0 x=[1] -> [1,2] and [3,4];
    # group 1 x=[10] -> 10*[5,6] and 10*[7,8]
    ("backprop1d_two_groups", BACKPROP, np.array([[[1], [10]]], dtype=float),
     np.array([[[[1, 2], [3, 4]]], [[[5, 6], [7, 8]]]], dtype=float), {},
     np.array([[[1, 2], [3, 4], [50, 60], [70, 80]]], dtype=float)),
]


@pytest.mark.parametrize("op, data, kernel, attributes, expected",
                         [entry[1:] for entry in GOLDEN], ids=[entry[0] for entry in GOLDEN])
def test_literal_reference_matches_hand_computed(op, data, kernel, attributes, expected):
    np.testing.assert_array_equal(_literal(op, data, kernel, **attributes), expected)


@pytest.mark.parametrize("op, data, kernel, attributes, expected",
                         [entry[1:] for entry in GOLDEN], ids=[entry[0] for entry in GOLDEN])
def test_torch_oracle_matches_hand_computed(op, data, kernel, attributes, expected):
    np.testing.assert_array_equal(_torch(op, data, kernel, **attributes), expected)


_EXPLICIT_ONLY = [entry for entry in GOLDEN
                  if entry[4].get("auto_pad", "explicit") == "explicit" and "output_shape" not in entry[4]]


@pytest.mark.parametrize("op, data, kernel, attributes, expected",
                         [entry[1:] for entry in _EXPLICIT_ONLY], ids=[entry[0] for entry in _EXPLICIT_ONLY])
def test_element_by_element_reference_matches_hand_computed(op, data, kernel, attributes, expected):
    np.testing.assert_array_equal(_scalar(op, data, kernel, **attributes), expected)


# --- shapes from the specs' own examples ---------------------------------------

def test_backprop_spec_examples_shapes():
    """.page.txt examples: X=224, K=3, stride 2, pads 1+1 -> 2*223 + 3 - 2 = 447 on every axis."""
    for rank in (1, 2, 3):
        geometry = literal.backprop_geometry((224,) * rank, (3,) * rank, (2,) * rank, (1,) * rank,
                                             (1,) * rank, (1,) * rank)
        assert geometry.output_spatial == (447,) * rank


def test_convolution_spec_example_shapes():
    """GroupConvolution-1 examples: X=224, K=5, stride 1 keeps 224 with pads 2+2 (or same_*)."""
    for rank in (1, 2, 3):
        explicit = literal.convolution_geometry((224,) * rank, (5,) * rank, (1,) * rank, (2,) * rank,
                                                (2,) * rank, (1,) * rank)
        same = literal.convolution_geometry((224,) * rank, (5,) * rank, (1,) * rank, (0,) * rank,
                                            (0,) * rank, (1,) * rank, "same_upper")
        assert explicit.output_spatial == same.output_spatial == (224,) * rank
        assert same.pads_begin == same.pads_end == (2,) * rank


@pytest.mark.parametrize("auto_pad, begin, end", [("same_upper", 1, 2), ("same_lower", 2, 1)])
def test_same_padding_odd_unit(auto_pad, begin, end):
    """X=5, K=4, s=1: 5 outputs need 3 pads; the odd one at the end (upper) or beginning (lower)."""
    geometry = literal.convolution_geometry((5,), (4,), (1,), (0,), (0,), (1,), auto_pad)
    assert (geometry.pads_begin, geometry.pads_end, geometry.output_spatial) == ((begin,), (end,), (5,))


def test_negative_pads_crop_the_input():
    """pads_begin=-1 drops the first input element: [2,3,4,5] * [1,-1] -> -1 x3."""
    out = literal.group_convolution(_1d([1, 2, 3, 4, 5]), _1d_kernel([1, -1]), (1,), (-1,), (0,), (1,))
    np.testing.assert_array_equal(out, _1d([-1, -1, -1]))


def test_negative_backprop_pads_extend_with_zeros():
    """pads_begin=-1 on BackpropData shifts the result right by one, a zero in front."""
    out = literal.group_convolution_backprop_data(_1d([1, 2]), _1d_kernel([1, 1]), (1,), (-1,), (0,), (1,))
    np.testing.assert_array_equal(out, _1d([0, 1, 3, 2]))
