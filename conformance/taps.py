"""The op computed on float64 torch tensors (``apply_op``) and the output elements its kernel taps
reach (``reached``): what the oracle computes with, and what the inputs stage's cancellation check
and the trust check (``api.trust_problem``) measure. Below both ``inputs.py`` and ``oracle.py``.
"""
from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import numpy as np

from . import ops, shapes
from .case import Case

if TYPE_CHECKING:  # annotations only: torch is imported where it is used (see oracle.py)
    import torch


def torch_weight(case: Case, kernel: torch.Tensor) -> torch.Tensor:
    """Spec kernel -> torch's grouped layout (the op's ``torch_weight``)."""
    op = ops.get(case.op)
    return op.torch_weight(op.grouped_kernel(kernel))


def apply_op(case: Case, data: torch.Tensor, kernel: torch.Tensor,
             geometry: shapes.Geometry | None = None) -> torch.Tensor:
    """Compute ``case``'s op on float64 torch tensors in the spec's layouts (the op's ``window``
    over every output position)."""
    geometry = geometry or case.geometry()
    outputs = tuple(range(size) for size in geometry.output_shape[2:])
    first_rows = (0,) * case.spatial_rank
    return ops.get(case.op).window(case, geometry, data, torch_weight(case, kernel), outputs, first_rows)


def reached(case: Case) -> np.ndarray:
    """Output elements (shape [1, 1, spatial...]) that any kernel tap reaches, by the geometry alone.

    One channel, one group, all-ones data and kernel: the count of taps landing on each output.
    """
    import torch   # here, not at module level: see oracle.py
    single = replace(case, data_shape=(1, 1) + case.data_shape[2:],
                     kernel_shape=ops.get(case.op).single_channel_kernel_shape(case.kernel_shape))
    with torch.no_grad():
        ones = torch.ones(single.data_shape, dtype=torch.float64)
        taps = apply_op(single, ones, torch.ones(single.kernel_shape, dtype=torch.float64)).numpy()
    return taps > 0
