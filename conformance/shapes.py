"""The spec's shape formulas, in one place.

Every other stage (oracle, renderer, checks) asks this module for output shapes
and effective pads, so the harness has exactly one reading of the spec text.
Where the spec is ambiguous, the reading taken here is documented in
``docs/spec-notes.md`` (the ``sn-…`` anchors in docstrings point there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

GROUP_CONVOLUTION = "GroupConvolution"
GROUP_CONVOLUTION_BACKPROP_DATA = "GroupConvolutionBackpropData"
OPS = (GROUP_CONVOLUTION, GROUP_CONVOLUTION_BACKPROP_DATA)
AUTO_PADS = ("explicit", "same_upper", "same_lower", "valid")


@dataclass(frozen=True)
class Geometry:
    """What the spec says the op computes, reduced to sizes.

    ``pads_begin``/``pads_end`` are the effective pads: for GroupConvolution they
    are added to the input; for BackpropData they are cropped from the full
    transposed-convolution result ("applied in the backward way, for the output").
    """

    groups: int
    in_channels_per_group: int
    out_channels_per_group: int
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    output_shape: tuple[int, ...]  # full output shape [N, GROUPS*C_OUT, spatial...]
    kernel_volume: int
    # BackpropData: at most this many kernel taps land on one output element
    # (per axis ceil(K / (s / gcd(s, d)))); None: every tap can (GroupConvolution).
    landing_volume: int | None = None

    @property
    def accumulation_length(self) -> int:
        """Upper bound on the number of products summed into one output element."""
        taps = self.kernel_volume if self.landing_volume is None else self.landing_volume
        return self.in_channels_per_group * taps


def dilated_kernel(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel along one axis: (K - 1) * d + 1."""
    return (kernel - 1) * dilation + 1


def group_convolution_geometry(data_shape, kernel_shape, strides, pads_begin, pads_end,
                               dilations, auto_pad="explicit") -> Geometry:
    """GroupConvolution-1: data [N, G*C_IN, ...], kernel [G, C_OUT, C_IN, ...].

    Pads: explicit uses the attributes; valid is zero; same_upper/same_lower pad
    the input so that output = ceil(input / stride), the odd unit at the end
    (same_upper) or at the beginning (same_lower) (sn-same-output-size). Output spatial size is
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
            total = max(0, (out - 1) * s + dilated_kernel(k, d) - x)
            small, large = total // 2, total - total // 2
            begin_list.append(small if auto_pad == "same_upper" else large)
            end_list.append(large if auto_pad == "same_upper" else small)
        begin, end = tuple(begin_list), tuple(end_list)
    out_spatial = tuple(
        (x + b + e - dilated_kernel(k, d)) // s + 1
        for x, k, s, d, b, e in zip(spatial, kernel, strides, dilations, begin, end))
    return Geometry(groups, c_in, c_out, begin, end,
                    (data_shape[0], groups * c_out) + out_spatial, math.prod(kernel))


def landing_taps(kernel: int, stride: int, dilation: int) -> int:
    """Most kernel taps of one axis that land on one output of a transposed convolution.

    Output o receives tap k from input i when o + pad = i*s + k*d, so the taps
    reaching o satisfy k*d = const (mod s): one residue class mod s/gcd(s, d).
    """
    period = stride // math.gcd(stride, dilation)
    return -(-kernel // period)


def backprop_full_size(x: int, kernel: int, stride: int, dilation: int) -> int:
    """Length of the uncropped transposed convolution: stride*(X-1) + dilated kernel."""
    return stride * (x - 1) + dilated_kernel(kernel, dilation)


def group_convolution_backprop_data_geometry(data_shape, kernel_shape, strides, pads_begin,
                                             pads_end, dilations, auto_pad="explicit",
                                             output_padding=None, output_shape=None) -> Geometry:
    """GroupConvolutionBackpropData-1: data [N, G*C_IN, ...], kernel [G, C_IN, C_OUT, ...].

    Without ``output_shape``: pads are the attributes when auto_pad is explicit
    and zero otherwise (the spec's ``if auto_pads != None: pads = 0``; sn-auto-pad-default,
    sn-backprop-auto-pad-no-output-shape), and
    Y = stride*(X-1) + dilated_kernel - pads_begin - pads_end + output_padding.

    With ``output_shape``: the attribute pads are ignored and
    total = stride*(X-1) + dilated_kernel - output_shape + output_padding is
    split by the spec's formula: same_upper puts the odd unit at the *beginning*,
    every other auto_pad (explicit and valid included) at the end
    (sn-same-upper-output-shape, sn-pads-ignored-output-shape, sn-explicit-output-shape,
    sn-valid-output-shape).
    """
    groups, c_in, c_out = kernel_shape[0], kernel_shape[1], kernel_shape[2]
    spatial = data_shape[2:]
    kernel = kernel_shape[3:]
    rank = len(spatial)
    output_padding = tuple(output_padding) if output_padding is not None else (0,) * rank
    full = tuple(backprop_full_size(x, k, s, d)
                 for x, k, s, d in zip(spatial, kernel, strides, dilations))
    if output_shape is None:
        if auto_pad == "explicit":
            begin, end = tuple(pads_begin), tuple(pads_end)
        else:
            begin = end = (0,) * rank
        out_spatial = tuple(f - b - e + p for f, b, e, p in zip(full, begin, end, output_padding))
    else:
        begin_list, end_list = [], []
        for f, y, p in zip(full, output_shape, output_padding):
            total = f - y + p
            if auto_pad != "same_upper":
                b = total // 2
                begin_list.append(b)
                end_list.append(total - b)
            else:
                e = total // 2
                end_list.append(e)
                begin_list.append(total - e)
        begin, end = tuple(begin_list), tuple(end_list)
        out_spatial = tuple(output_shape)
    return Geometry(groups, c_in, c_out, begin, end,
                    (data_shape[0], groups * c_out) + out_spatial, math.prod(kernel),
                    math.prod(landing_taps(k, s, d) for k, s, d in zip(kernel, strides, dilations)))
