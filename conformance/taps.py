"""The op computed on float64 torch tensors (``apply_op``) and the output elements its kernel taps
reach (``reached``): what the oracle computes with, and what the inputs stage's cancellation check
and the trust check (``api.trust_problem``) measure. Below both ``inputs.py`` and ``oracle.py``.
"""
from __future__ import annotations

import math
from contextlib import contextmanager
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


# Convolutions up to this much work (output elements x products per element) run on one torch
# thread. torch's OpenMP threads meet at barriers inside every convolution; when another process
# (or OpenVINO's own threads) holds a core, a small convolution waits for a time slice there:
# measured on 2 loaded cores, a 16x16 8-channel conv2d took 21 ms with 2 threads and 0.14 ms
# with 1, and the oracles and input draws of 140 suite cases 49 s against 3.8 s. Above it a
# second thread pays for itself on an idle core (the full-size slabs keep torch's setting).
# The thread count changes no value: the same kernels compute the same per-element sums.
ONE_THREAD_WORK = 1 << 26


@contextmanager
def _threads_for(work: int):
    """torch on one thread while a computation of ``work`` products runs, when it is small."""
    import torch
    previous = torch.get_num_threads()
    if work > ONE_THREAD_WORK or previous == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def apply_op(case: Case, data: torch.Tensor, kernel: torch.Tensor,
             geometry: shapes.Geometry | None = None, *, keep_threads: bool = False) -> torch.Tensor:
    """Compute ``case``'s op on torch tensors in the spec's layouts (the op's ``window`` over every
    output position). Small work runs on one torch thread (``ONE_THREAD_WORK``) unless
    ``keep_threads`` (the performance view times torch at the thread count it set)."""
    geometry = geometry or case.geometry()
    outputs = tuple(range(size) for size in geometry.output_shape[2:])
    first_rows = (0,) * case.spatial_rank
    window = ops.get(case.op).window
    if keep_threads:
        return window(case, geometry, data, torch_weight(case, kernel), outputs, first_rows)
    with _threads_for(math.prod(geometry.output_shape) * geometry.accumulation_length):
        return window(case, geometry, data, torch_weight(case, kernel), outputs, first_rows)


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
