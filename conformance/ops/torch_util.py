"""Torch primitives the op oracles share: index-based pad/crop/extend, packed strides, layouts.

torch is imported where it is first used, not at module level: importing it takes ~1 s, and
the pytest plugin imports the stages without computing anything.
"""
from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # annotations only
    import torch


def conv(rank: int):
    import torch.nn.functional as F
    return (F.conv1d, F.conv2d, F.conv3d)[rank - 1]


def conv_transpose(rank: int):
    import torch.nn.functional as F
    return (F.conv_transpose1d, F.conv_transpose2d, F.conv_transpose3d)[rank - 1]


def _contiguous_run(index: np.ndarray) -> tuple[int, int, int] | None:
    """(first position, first source row, length) when ``index`` is one run of consecutive rows
    with only -1 (zeros) around it, else None."""
    inside = np.flatnonzero(index >= 0)
    if not inside.size:
        return None
    first, row = int(inside[0]), int(index[inside[0]])
    if not np.array_equal(index[first:int(inside[-1]) + 1], np.arange(row, row + inside.size)):
        return None
    return first, row, int(inside.size)


def take(tensor: torch.Tensor, indices: dict[int, np.ndarray]) -> torch.Tensor:
    """``tensor`` indexed along each ``axis`` by ``indices[axis]``; an index of -1 gives a zero there.

    This is how the oracle pads, crops and extends: explicitly, by index, so any
    pad the spec allows (larger than the tensor, negative, or reaching past the
    result) works, instead of torch's padding/output_padding limits. The usual
    case (every axis one run of rows with zeros around it) is one copy (into a
    zero-filled tensor where zeros are added), as ``F.pad`` would do.
    """
    import torch
    runs = {axis: _contiguous_run(index) for axis, index in indices.items()}
    if all(run is not None for run in runs.values()):
        source = tensor
        for axis, (_, row, length) in runs.items():
            source = source.narrow(axis, row, length)
        if all(length == indices[axis].size for axis, (_, _, length) in runs.items()):
            return source.contiguous()   # a crop: its own memory, so the uncropped tensor can go
        shape = list(tensor.shape)
        for axis, index in indices.items():
            shape[axis] = index.size
        result = tensor.new_zeros(shape)
        target = result
        for axis, (first, _, length) in runs.items():
            target = target.narrow(axis, first, length)
        target.copy_(source)
        return result
    for axis, index in indices.items():   # scattered rows (packed huge strides) or no row at all
        zero_shape = list(tensor.shape)
        zero_shape[axis] = 1
        with_zero = torch.cat([tensor, tensor.new_zeros(zero_shape)], dim=axis)
        where = np.where(index < 0, tensor.shape[axis], index)
        tensor = with_zero.index_select(axis, torch.from_numpy(where.astype(np.int64)))
    return tensor


def window_stride(stride: int, extent: int) -> int:
    """The stride the oracle convolves with along one axis: ``min(stride, dilated kernel extent)``.

    With ``stride > extent`` the windows (convolution) or the scattered
    copies of the kernel (transposed convolution) do not overlap, and the gaps between
    them hold nothing but zeros: the oracle packs the windows/copies side by
    side (stride = extent) and maps them back by index, so a stride of 2**40
    costs no more than a stride of ``extent`` (sn-huge-strides).
    """
    return min(stride, extent)


def fast_layout(tensor: torch.Tensor) -> torch.Tensor:
    """channels-last for 3D float32: torch's oneDNN path, ~8x faster than its grouped NCDHW conv3d.

    Layout only: the same products and (for the exact float32 case) the same exact sums.
    """
    import torch
    if tensor.dim() == 5 and tensor.dtype == torch.float32:
        return tensor.contiguous(memory_format=torch.channels_last_3d)
    return tensor
