"""The PyTorch oracle: what the spec says the output is, in float64.

GroupConvolution: pad the input with the spec's effective pads (F.pad, which
also crops for negative pads), then a grouped convolution with no padding.
BackpropData: the full, uncropped grouped transposed convolution, then the
spec's pads cropped from (and output_padding appended to) the result.
Pads and output shape come from ``shapes`` via ``Case.geometry()``.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from . import shapes
from .case import Case
from .inputs import Inputs

_CONV = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}
_CONV_TRANSPOSE = {1: F.conv_transpose1d, 2: F.conv_transpose2d, 3: F.conv_transpose3d}


@dataclass(frozen=True)
class Reference:
    """The spec's output and, per element, the sum of |products| that formed it."""

    output: np.ndarray          # float64, the spec's output
    magnitude: np.ndarray       # float64, (|data| op |kernel|): scales rounding-error bounds
    geometry: shapes.Geometry


def _torch_pad(begin, end) -> list[int]:
    """F.pad wants (last_begin, last_end, ..., first_begin, first_end)."""
    pad: list[int] = []
    for b, e in zip(reversed(begin), reversed(end)):
        pad += [b, e]
    return pad


def apply_op(case: Case, data: torch.Tensor, kernel: torch.Tensor,
             geometry: shapes.Geometry | None = None) -> torch.Tensor:
    """Compute ``case``'s op on float64 torch tensors in the spec's layouts."""
    geometry = geometry or case.geometry()
    rank = case.spatial_rank
    groups = geometry.groups
    if case.op == shapes.GROUP_CONVOLUTION:
        # [G, C_OUT, C_IN, k...] -> torch's [G*C_OUT, C_IN, k...]
        weight = kernel.reshape((groups * geometry.out_channels_per_group,) + tuple(kernel.shape[2:]))
        padded = F.pad(data, _torch_pad(geometry.pads_begin, geometry.pads_end))
        return _CONV[rank](padded, weight, stride=case.strides, dilation=case.dilations, groups=groups)
    # [G, C_IN, C_OUT, k...] -> torch's [G*C_IN, C_OUT, k...]
    weight = kernel.reshape((groups * geometry.in_channels_per_group,) + tuple(kernel.shape[2:]))
    full = _CONV_TRANSPOSE[rank](data, weight, stride=case.strides, dilation=case.dilations, groups=groups)
    output_padding = case.output_padding or (0,) * rank
    # Crop pads_begin; crop pads_end but give back output_padding zeros/values at the end.
    crop_end = [pad - extra for pad, extra in zip(geometry.pads_end, output_padding)]
    return F.pad(full, _torch_pad([-b for b in geometry.pads_begin], [-c for c in crop_end]))


def reference(case: Case, inputs: Inputs) -> Reference:
    """The spec's output for ``inputs`` plus the |product| sums used by tolerances."""
    geometry = case.geometry()
    with torch.no_grad():
        data = torch.from_numpy(inputs.data.astype(np.float64))
        kernel = torch.from_numpy(inputs.kernel.astype(np.float64))
        output = apply_op(case, data, kernel, geometry).numpy()
        magnitude = apply_op(case, data.abs(), kernel.abs(), geometry).numpy()
    if output.shape != geometry.output_shape:
        raise AssertionError(f"oracle bug: torch gave {output.shape}, the spec formula {geometry.output_shape}")
    return Reference(output, magnitude, geometry)
