"""A second oracle, written straight from the spec text in NumPy float64.

It exists only to check the harness's PyTorch oracle (``conformance.oracle``)
and its shape formulas (``conformance.shapes``): it imports neither, uses no
torch, and derives pads and output sizes from the spec sentences quoted in the
docstrings below. Speed is not a goal; being obviously the spec is. The loops
run over groups and kernel taps; each tap is one ``einsum`` over channels for
every output (or input) position at once.

Readings of ambiguous spec text are the ones docs/spec-notes.md records; the
anchors are named where they matter.

GroupConvolution-1, per group ``g`` (spec: "splits input into multiple groups,
convolves them with group filters as in regular convolution and concatenates
the results")::

    out[n, g*C_OUT + co, o] = sum_{ci, k} padded[n, g*C_IN + ci, o*s + k*d] * w[g, co, ci, k]

where ``padded`` is the input with ``pads_begin`` zeros before and
``pads_end`` zeros after each spatial axis.

GroupConvolutionBackpropData-1 ("the gradient of GroupConvolution with respect
to its input"; attributes "applied in the backward way, for the output"): every
input element is scattered through the kernel::

    out[n, g*C_OUT + co, i*s + k*d - pads_begin] += x[n, g*C_IN + ci, i] * w[g, ci, co, k]

for the positions that fall inside the output of spatial size ``Y``.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass

import numpy as np

AUTO_PADS = ("explicit", "same_upper", "same_lower", "valid")


@dataclass(frozen=True)
class LiteralGeometry:
    """Pads and spatial output size as read from the spec, per axis."""

    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    output_spatial: tuple[int, ...]


def _positions_along_axis(padded_length: int, dilated_kernel: int, stride: int) -> int:
    """How many window positions fit: windows start at 0, s, 2s, ... and must end inside."""
    return len(range(0, padded_length - dilated_kernel + 1, stride))


def _dilated(kernel: int, dilation: int) -> int:
    """A kernel of K taps spaced d apart covers (K-1)*d + 1 input elements."""
    return (kernel - 1) * dilation + 1


def convolution_geometry(spatial, kernel, strides, pads_begin, pads_end, dilations,
                         auto_pad="explicit") -> LiteralGeometry:
    """GroupConvolution-1 pads and output size.

    explicit: "use explicit padding values from pads_begin and pads_end".
    valid: "do not use padding".
    same_upper/same_lower: "the input is padded to match the output size. In
    case of odd padding value an extra padding is added at the end (same_upper)
    / at the beginning (same_lower)". The spec does not say what output size is
    matched; the usual (ONNX/TF) reading is ceil(X / stride) (docs/spec-notes.md
    #sn-same-output-size). The total padding is the smallest one that gives that
    many window positions: found by counting, not by a closed formula.
    """
    begin, end, out = [], [], []
    for axis, (x, k, s, d) in enumerate(zip(spatial, kernel, strides, dilations)):
        dk = _dilated(k, d)
        if auto_pad == "explicit":
            b, e = pads_begin[axis], pads_end[axis]
        elif auto_pad == "valid":
            b = e = 0
        elif auto_pad in ("same_upper", "same_lower"):
            wanted = -(-x // s)
            total = 0
            while _positions_along_axis(x + total, dk, s) < wanted:
                total += 1
            smaller, larger = total // 2, total - total // 2
            b, e = (smaller, larger) if auto_pad == "same_upper" else (larger, smaller)
        else:
            raise ValueError(f"auto_pad {auto_pad!r}")
        begin.append(b)
        end.append(e)
        out.append(_positions_along_axis(x + b + e, dk, s))
    return LiteralGeometry(tuple(begin), tuple(end), tuple(out))


def backprop_geometry(spatial, kernel, strides, pads_begin, pads_end, dilations,
                      auto_pad="explicit", output_padding=None, output_shape=None) -> LiteralGeometry:
    """GroupConvolutionBackpropData-1 pads and output size.

    Without output_shape (spec pseudo-code)::

        if auto_pads != None: pads_begin[i] = 0; pads_end[i] = 0
        Y_i = stride[i] * (X_i - 1) + ((K_i - 1) * dilations[i] + 1) - pads_begin[i] - pads_end[i] + output_padding[i]

    "None" is read as "explicit" (the .page.txt default; docs/spec-notes.md
    #sn-auto-pad-default), so explicit keeps the attribute pads.

    With output_shape: "pads_begin and pads_end are ignored, and auto_pad
    defines how to distribute padding amount"::

        total_padding[i] = stride[i] * (X_i - 1) + ((K_i - 1) * dilations[i] + 1) - output_shape[i] + output_padding[i]
        if auto_pads != SAME_UPPER: pads_begin[i] = total_padding[i] // 2; pads_end[i] = total_padding[i] - pads_begin[i]
        else:                       pads_end[i] = total_padding[i] // 2;   pads_begin[i] = total_padding[i] - pads_end[i]

    (docs/spec-notes.md#sn-same-upper-output-shape, #sn-explicit-output-shape).
    """
    rank = len(spatial)
    output_padding = tuple(output_padding) if output_padding is not None else (0,) * rank
    begin, end, out = [], [], []
    for axis in range(rank):
        x, k, s, d = spatial[axis], kernel[axis], strides[axis], dilations[axis]
        p = output_padding[axis]
        if output_shape is None:
            b, e = (pads_begin[axis], pads_end[axis]) if auto_pad == "explicit" else (0, 0)
            y = s * (x - 1) + ((k - 1) * d + 1) - b - e + p
        else:
            y = output_shape[axis]
            total = s * (x - 1) + ((k - 1) * d + 1) - y + p
            if auto_pad != "same_upper":
                b = total // 2
                e = total - b
            else:
                e = total // 2
                b = total - e
        begin.append(b)
        end.append(e)
        out.append(y)
    return LiteralGeometry(tuple(begin), tuple(end), tuple(out))


def group_convolution(data, kernel, strides, pads_begin, pads_end, dilations,
                      auto_pad="explicit") -> np.ndarray:
    """GroupConvolution-1 in float64: data [N, G*C_IN, ...], kernel [G, C_OUT, C_IN, ...]."""
    data = np.asarray(data, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    groups, c_out, c_in = kernel.shape[:3]
    spatial, taps = data.shape[2:], kernel.shape[3:]
    assert data.shape[1] == groups * c_in, "data channels must be GROUPS * C_IN"
    geometry = convolution_geometry(spatial, taps, strides, pads_begin, pads_end, dilations, auto_pad)
    batch = data.shape[0]
    out = np.zeros((batch, groups * c_out) + geometry.output_spatial)
    for g in range(groups):
        x_group = data[:, g * c_in:(g + 1) * c_in]
        for tap in itertools.product(*(range(k) for k in taps)):
            # Input index read by output position o through this tap: o*s + k*d - pads_begin
            # (the padded tensor's index minus the zeros added in front).
            index = [np.arange(o) * s + k * d - b
                     for o, s, k, d, b in zip(geometry.output_spatial, strides, tap, dilations,
                                              geometry.pads_begin)]
            inside = [(i >= 0) & (i < x) for i, x in zip(index, spatial)]
            if not all(mask.any() for mask in inside):
                continue  # this tap only ever reads padding zeros
            gathered = x_group[(slice(None), slice(None)) + np.ix_(*[i[m] for i, m in zip(index, inside)])]
            weights = kernel[(g, slice(None), slice(None)) + tap]            # [C_OUT, C_IN]
            contribution = np.einsum("nc...,oc->no...", gathered, weights)
            target = (slice(None), slice(g * c_out, (g + 1) * c_out)) + np.ix_(*[np.nonzero(m)[0] for m in inside])
            out[target] += contribution
    return out


def group_convolution_backprop_data(data, kernel, strides, pads_begin, pads_end, dilations,
                                    auto_pad="explicit", output_padding=None,
                                    output_shape=None) -> np.ndarray:
    """GroupConvolutionBackpropData-1 in float64: data [N, G*C_IN, ...], kernel [G, C_IN, C_OUT, ...]."""
    data = np.asarray(data, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    groups, c_in, c_out = kernel.shape[:3]
    spatial, taps = data.shape[2:], kernel.shape[3:]
    assert data.shape[1] == groups * c_in, "data channels must be GROUPS * C_IN"
    geometry = backprop_geometry(spatial, taps, strides, pads_begin, pads_end, dilations,
                                 auto_pad, output_padding, output_shape)
    batch = data.shape[0]
    out = np.zeros((batch, groups * c_out) + geometry.output_spatial)
    for g in range(groups):
        x_group = data[:, g * c_in:(g + 1) * c_in]
        for tap in itertools.product(*(range(k) for k in taps)):
            # Output index written by input position i through this tap: i*s + k*d - pads_begin.
            # For one tap, distinct i give distinct targets (s >= 1), so += is a plain scatter.
            index = [np.arange(x) * s + k * d - b
                     for x, s, k, d, b in zip(spatial, strides, tap, dilations, geometry.pads_begin)]
            inside = [(i >= 0) & (i < y) for i, y in zip(index, geometry.output_spatial)]
            if not all(mask.any() for mask in inside):
                continue  # every write of this tap is cropped away
            source = x_group[(slice(None), slice(None)) + np.ix_(*[np.nonzero(m)[0] for m in inside])]
            weights = kernel[(g, slice(None), slice(None)) + tap]            # [C_IN, C_OUT]
            contribution = np.einsum("nc...,co->no...", source, weights)
            target = (slice(None), slice(g * c_out, (g + 1) * c_out)) + np.ix_(*[i[m] for i, m in zip(index, inside)])
            out[target] += contribution
    return out


def group_convolution_scalar(data, kernel, strides, pads_begin, pads_end, dilations) -> np.ndarray:
    """GroupConvolution-1 with explicit pads, one output element at a time (for tiny golden tests).

    The most literal form: build the zero-padded input, then for every output
    element sum input * weight over the group's input channels and kernel taps.
    Negative pads are not supported here (there is nothing to pad).
    """
    data = np.asarray(data, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    groups, c_out, c_in = kernel.shape[:3]
    taps = kernel.shape[3:]
    padded = np.pad(data, [(0, 0), (0, 0)] + list(zip(pads_begin, pads_end)))
    out_spatial = [_positions_along_axis(p, _dilated(k, d), s)
                   for p, k, d, s in zip(padded.shape[2:], taps, dilations, strides)]
    out = np.zeros((data.shape[0], groups * c_out) + tuple(out_spatial))
    for n, g, co in itertools.product(range(data.shape[0]), range(groups), range(c_out)):
        for o in itertools.product(*(range(size) for size in out_spatial)):
            total = 0.0
            for ci in range(c_in):
                for tap in itertools.product(*(range(k) for k in taps)):
                    where = tuple(oo * s + kk * d for oo, s, kk, d in zip(o, strides, tap, dilations))
                    total += padded[(n, g * c_in + ci) + where] * kernel[(g, co, ci) + tap]
            out[(n, g * c_out + co) + o] = total
    return out


def group_convolution_backprop_data_scalar(data, kernel, strides, pads_begin, pads_end, dilations,
                                           output_padding=None) -> np.ndarray:
    """BackpropData with explicit pads, element by element (for tiny golden tests).

    Scatter every input element through every tap into the full (uncropped)
    result of size s*(X-1) + (K-1)*d + 1 + output_padding, then drop
    pads_begin elements at the front and pads_end at the back.
    """
    data = np.asarray(data, dtype=np.float64)
    kernel = np.asarray(kernel, dtype=np.float64)
    groups, c_in, c_out = kernel.shape[:3]
    spatial, taps = data.shape[2:], kernel.shape[3:]
    rank = len(spatial)
    output_padding = output_padding or (0,) * rank
    full = [s * (x - 1) + _dilated(k, d) + p
            for x, k, s, d, p in zip(spatial, taps, strides, dilations, output_padding)]
    result = np.zeros((data.shape[0], groups * c_out) + tuple(full))
    for n, g, ci in itertools.product(range(data.shape[0]), range(groups), range(c_in)):
        for i in itertools.product(*(range(x) for x in spatial)):
            for co in range(c_out):
                for tap in itertools.product(*(range(k) for k in taps)):
                    where = tuple(ii * s + kk * d for ii, s, kk, d in zip(i, strides, tap, dilations))
                    result[(n, g * c_out + co) + where] += data[(n, g * c_in + ci) + i] * kernel[(g, ci, co) + tap]
    crop = tuple(slice(b, size - e) for b, e, size in zip(pads_begin, pads_end, full))
    return result[(slice(None), slice(None)) + crop]
