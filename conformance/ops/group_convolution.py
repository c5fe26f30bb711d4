"""GroupConvolution-1 (and, with ``grouped = False``, the formulas Convolution-1 reuses).

Spec (GroupConvolution-1.rst): input 1 "data" ``[N, GROUPS * C_IN, Z, Y, X]``, input 2 "kernel"
``[GROUPS, C_OUT, C_IN, Z, Y, X]``, output ``[N, GROUPS * C_OUT, Z, Y, X]``.
"""
from __future__ import annotations

import math

import numpy as np

from .. import shapes
from . import fuzz
from .base import Op
from .torch_util import conv, fast_layout, take, window_stride


def group_convolution_geometry(data_shape, kernel_shape, strides, pads_begin, pads_end,
                               dilations, auto_pad="explicit") -> shapes.Geometry:
    """GroupConvolution-1: data [N, G*C_IN, ...], kernel [G, C_OUT, C_IN, ...].

    Pads: explicit uses the attributes; valid is zero; same_upper/same_lower pad
    the input so that output = ceil(input / stride), the odd unit at the end
    (same_upper) or at the beginning (same_lower) (sn-same-output-size). The spec:
    "*same_upper* - the input is padded to match the output size. In case of odd padding value
    an extra padding is added at the end". Output spatial size is
    floor((X + pads_begin + pads_end - dilated_kernel) / stride) + 1; negative pads (a case's
    opt-in) crop the input (sn-negative-pads).
    """
    groups, c_out, c_in = kernel_shape[0], kernel_shape[1], kernel_shape[2]
    spatial = data_shape[2:]
    kernel = kernel_shape[3:]
    if auto_pad == "explicit":
        begin, end = tuple(pads_begin), tuple(pads_end)
    elif auto_pad == "valid":
        begin = end = (0,) * len(spatial)
    else:
        begin_list, end_list = [], []
        for x, k, s, d in zip(spatial, kernel, strides, dilations):
            out = -(-x // s)  # ceil
            total = max(0, (out - 1) * s + shapes.dilated_kernel(k, d) - x)
            small, large = total // 2, total - total // 2
            begin_list.append(small if auto_pad == "same_upper" else large)
            end_list.append(large if auto_pad == "same_upper" else small)
        begin, end = tuple(begin_list), tuple(end_list)
    out_spatial = tuple(
        (x + b + e - shapes.dilated_kernel(k, d)) // s + 1
        for x, k, s, d, b, e in zip(spatial, kernel, strides, dilations, begin, end))
    return shapes.Geometry(groups, c_in, c_out, begin, end,
                           (data_shape[0], groups * c_out) + out_spatial, math.prod(kernel))


def convolution_input_index(outputs: range, stride: int, extent: int, pads_begin: int,
                            first_row: int, rows: int) -> np.ndarray:
    """One axis: the input rows (of ``rows`` held, the first being global row
    ``first_row``) that the packed windows of output positions ``outputs`` read; -1 = a pad zero.

    Packed position ``g`` holds window ``outputs[0] + g // w``, tap offset ``g % w``
    (``w = window_stride``), i.e. padded position ``(outputs[0] + g // w) * stride + g % w``,
    input row ``padded - pads_begin`` (a negative pad, a case's opt-in, crops the input).
    """
    packed = window_stride(stride, extent)
    position = np.arange((len(outputs) - 1) * packed + extent, dtype=np.int64)
    padded = (outputs.start + position // packed) * stride + position % packed
    row = padded - pads_begin - first_row
    return np.where((row >= 0) & (row < rows), row, -1)


def _fits_int64(bound: int) -> bool:
    """True when index arithmetic bounded by ``bound`` stays exact in int64 (``reach``)."""
    return bound < 1 << 62


SPEC_SCAFFOLD = """\
# GroupConvolution-1 cases, written in the spec's terms.
# Check with: ov-conformance validate {path}
op: GroupConvolution
defaults:                        # merged into every case below (any case field)
  fill: integers                 # integers (exact in f32, default) or uniform
cases:
  - name: my_case                # no spaces, '[', ']', ':' or '/'
    description: what this case shows
    data: [1, 8, 10, 10]         # [N, GROUPS*C_IN, spatial...]: rank 3, 4 or 5
    kernel: [4, 2, 2, 3, 3]      # [GROUPS, C_OUT, C_IN, k...]: rank = data rank + 1
    strides: [1, 1]              # >= 1; one integer for all axes, or one per spatial axis
    dilations: [1, 1]            # >= 1
    pads_begin: [1, 1]           # >= 0; used when auto_pad is explicit
    pads_end: [1, 1]
    auto_pad: explicit           # explicit, same_upper, same_lower, valid
    sweep:                       # optional: one case per combination of these values
      strides: [1, 2]
"""

PYTORCH_SCAFFOLD = """\
# GroupConvolution-1 cases, written as torch.nn.Conv2d (Conv1d/Conv3d: 1 or 3 spatial axes).
# Check with: ov-conformance validate {path}
op: GroupConvolution
defaults:
  style: pytorch
cases:
  - name: my_case                # nn.Conv2d(8, 12, kernel_size=3, stride=1, padding='same', groups=4)
    input_shape: [1, 8, 10, 10]  # [N, C, H, W]
    in_channels: 8               # divisible by groups
    out_channels: 12             # divisible by groups
    groups: 4
    kernel_size: 3               # int or one per spatial axis
    stride: 1
    padding: same                # int, [h, w], 'same' (stride 1 only, as in torch) or 'valid'
    dilation: 1
"""

MATLAB_SCAFFOLD = """\
# GroupConvolution-1 cases, written as MATLAB's groupedConvolution2dLayer (2D only).
# Check with: ov-conformance validate {path}
op: GroupConvolution
defaults:
  style: matlab
cases:
  - name: my_case                # groupedConvolution2dLayer(3, 1, 'channelwise', 'Stride', 2, 'Padding', 'same')
    InputSize: [28, 28, 32]      # [H W C], as imageInputLayer
    BatchSize: 1
    FilterSize: 3                # h or [h w]
    NumFiltersPerGroup: 1
    NumGroups: channelwise       # a positive integer dividing C, or channelwise (= C)
    Stride: 2                    # s or [a b]
    DilationFactor: 1            # d or [h w]
    Padding: same                # p, [a b], [t b l r], or same (= ceil(in/stride), odd extra bottom/right)
    PaddingValue: 0              # only 0: these ops pad with zeros
"""


class GroupConvolution(Op):
    name = "GroupConvolution"
    spec = "GroupConvolution-1"
    template = "GroupConvolution"
    sibling = "Convolution"
    kernel_layout = "[GROUPS, C_OUT, C_IN, ...]"
    styles = ("spec", "pytorch", "matlab")
    # Its weights FilterSize(1) x FilterSize(2) x NumChannelsPerGroup x NumFiltersPerGroup x NumGroups
    # are this op's kernel [NumGroups, NumFiltersPerGroup, NumChannelsPerGroup, h, w] (kernel_shape_for).
    matlab_layer = "groupedConvolution2dLayer"
    scaffolds = {"spec": SPEC_SCAFFOLD, "pytorch": PYTORCH_SCAFFOLD, "matlab": MATLAB_SCAFFOLD}

    def channels(self, kernel_shape):
        groups, c_out, c_in = self.grouped_shape(kernel_shape)[:3]
        return groups, c_in, c_out

    def geometry(self, case) -> shapes.Geometry:
        return group_convolution_geometry(case.data_shape, self.grouped_shape(case.kernel_shape), case.strides,
                                          case.pads_begin, case.pads_end, case.dilations, case.auto_pad)

    def window(self, case, geometry, data, weight, outputs, first_rows):
        """The windows of the input padded with the spec's effective pads, gathered by index (a
        negative pad crops), then a grouped convolution with no padding."""
        extents = self.extents(case)
        gathered = take(data, {
            axis + 2: convolution_input_index(out, stride, extent, begin, first, data.shape[axis + 2])
            for axis, (out, stride, extent, begin, first) in enumerate(
                zip(outputs, case.strides, extents, geometry.pads_begin, first_rows))})
        strides = tuple(window_stride(s, e) for s, e in zip(case.strides, extents))
        return conv(case.spatial_rank)(fast_layout(gathered), fast_layout(weight), stride=strides,
                                       dilation=case.dilations, groups=geometry.groups).contiguous()

    def reach(self, case, geometry):
        """An output position is reached when some tap of its window lands on a data row (not a pad):
        the window of output ``o`` reads rows ``o * stride - pads_begin + k * dilation``, k < taps."""
        axes = []
        for size, rows, taps, stride, dilation, begin in zip(
                geometry.output_shape[2:], case.data_shape[2:], self.kernel_spatial(case.kernel_shape),
                case.strides, case.dilations, geometry.pads_begin):
            if not _fits_int64(size * stride + abs(begin) + rows + taps * dilation):
                return None
            first = np.arange(size, dtype=np.int64) * stride - begin   # the row of each window's tap 0
            lowest = np.maximum(0, -(first // dilation))                # its first tap on a row >= 0
            highest = np.minimum(taps - 1, (rows - 1 - first) // dilation)   # its last tap on a row < rows
            axes.append(lowest <= highest)
        return tuple(axes)

    def slab(self, case, geometry, data, weight, start, stop):
        """Only the input rows the slab's windows read, then the windows."""
        stride, extent = case.strides[0], self.extents(case)[0]
        rows = data.shape[2]
        first = start * stride - geometry.pads_begin[0]              # input row of the first padded row read
        last = (stop - 1) * stride + extent - geometry.pads_begin[0]  # one past the last
        low, high = min(max(first, 0), rows), min(max(last, 0), rows)
        outputs = (range(start, stop),) + tuple(range(size) for size in geometry.output_shape[3:])
        return self.window(case, geometry, data[:, :, low:high], weight, outputs,
                           (low,) + (0,) * (case.spatial_rank - 1))

    def intermediate_elements(self, case, geometry) -> int:
        """The padded input."""
        return math.prod(case.data_shape[:2]) * math.prod(
            max(0, x + b + e) for x, b, e in zip(case.data_shape[2:], geometry.pads_begin, geometry.pads_end))

    def slab_intermediate_fraction(self, input_fraction, planes, depth):
        return input_fraction   # the padded halo

    def grouped_layout(self, groups, c_in, c_out, spatial):
        return (groups, c_out, c_in) + tuple(spatial)

    def strategy(self, negative_pads: bool = True, output_shape: bool = True, **_):
        return fuzz.configs(self, fuzz.convolution_fields, negative_pads=negative_pads, output_shape=output_shape)

    def edge_strategy(self, huge_strides: bool = True):
        return fuzz.edge_configs(self, fuzz.convolution_edge_fields, huge_strides=huge_strides)

    def fuzz_fields(self, rng, max_channels):
        return fuzz.convolution_draw(rng, self, max_channels)

    def fuzz_classes(self, params):
        return fuzz.convolution_classes(params)


OP = GroupConvolution()
