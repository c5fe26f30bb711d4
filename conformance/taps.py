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


# Convolutions up to this much work run on torch's own (native) kernels, not through oneDNN: oneDNN
# makes (JIT-compiles) a primitive for every new shape, and a fuzzing campaign's shapes are nearly all
# new: measured, the oracle of a fuzz-sized case (two convolutions) took 1.0-1.3 ms with oneDNN and
# 0.66 ms without; a 4-channel 8x8 conv2d 0.076 ms against 0.016 ms with oneDNN's primitive already
# made. oneDNN pays off from ~10**7 products. The values are the same: the oracle's float32 is used
# only where it is exact (``exact_dtype``: every sum exact in any order), and oneDNN has no float64.
NATIVE_CONVOLUTION_WORK = 1 << 20


@contextmanager
def _native_convolutions_for(work: int):
    """torch's oneDNN convolutions off while a computation of ``work`` products runs, when it is small."""
    import torch
    mkldnn = torch.backends.mkldnn
    if work > NATIVE_CONVOLUTION_WORK or not mkldnn.enabled:
        yield
        return
    mkldnn.enabled = False
    try:
        yield
    finally:
        mkldnn.enabled = True


def apply_op(case: Case, data: torch.Tensor, kernel: torch.Tensor,
             geometry: shapes.Geometry | None = None, *, keep_threads: bool = False) -> torch.Tensor:
    """Compute ``case``'s op on torch tensors in the spec's layouts (the op's ``window`` over every
    output position). Small work runs on one torch thread (``ONE_THREAD_WORK``) and, smaller still,
    on torch's native convolutions (``NATIVE_CONVOLUTION_WORK``) unless ``keep_threads`` (the
    performance view times torch as it set it up)."""
    geometry = geometry or case.geometry()
    outputs = tuple(range(size) for size in geometry.output_shape[2:])
    first_rows = (0,) * case.spatial_rank
    window = ops.get(case.op).window
    if keep_threads:
        return window(case, geometry, data, torch_weight(case, kernel), outputs, first_rows)
    work = math.prod(geometry.output_shape) * geometry.accumulation_length
    with _threads_for(work), _native_convolutions_for(work):
        return window(case, geometry, data, torch_weight(case, kernel), outputs, first_rows)


def reached(case: Case) -> np.ndarray:
    """Output elements (shape [1, 1, spatial...]) that any kernel tap reaches, by the geometry alone.

    One channel, one group, all-ones data and kernel: the count of taps landing on each output.
    Read-only: the array is shared by every case of the same geometry (the draw's cancellation
    check and the trust check both ask for it).
    """
    data_shape = (1, 1) + case.data_shape[2:]
    kernel_shape = ops.get(case.op).single_channel_kernel_shape(case.kernel_shape)
    # The one-channel case's fields, read off ``case`` (its attributes do not depend on channels): the
    # one-channel case itself (a dataclass copy, ~30 us) is made only when the mask is not kept.
    key = (case.op, data_shape, kernel_shape, tuple(sorted(case.attributes().items())), case.output_shape)
    mask = _REACHED.get(key)
    if mask is None:   # (a local: another thread may clear the dict meanwhile)
        mask = _reached(replace(case, data_shape=data_shape, kernel_shape=kernel_shape))
        if len(_REACHED) >= _REACHED_KEPT:
            _REACHED.clear()
        _REACHED[key] = mask
    return mask


_REACHED: dict[tuple, np.ndarray] = {}   # geometry fields -> reached(): a pure function of them
_REACHED_KEPT = 256


def _reached(single: Case) -> np.ndarray:
    """``reached`` of ``single``, the one-channel case: the outer AND of the op's per-axis reach
    (``Op.reach``: index arithmetic, ~50x cheaper than a convolution of ones on a fuzz-sized case, and
    the same mask: tests/test_oracle_properties.py), else ones convolved (``_reached_by_convolution``)."""
    axes = ops.get(single.op).reach(single, single.geometry())
    if axes is None:
        return _reached_by_convolution(single)
    mask = np.ones((), dtype=bool)
    for axis in axes:
        mask = np.logical_and.outer(mask, axis)
    mask = np.ascontiguousarray(mask.reshape((1, 1) + mask.shape))
    mask.flags.writeable = False
    return mask


def _reached_by_convolution(single: Case) -> np.ndarray:
    """``reached`` of ``single`` by the oracle's own computation: the tap count of every output
    element with all-ones data and kernel, > 0."""
    import torch   # here, not at module level: see oracle.py
    # Tap counts are integers below the kernel's volume: float32 counts them exactly (and faster).
    dtype = torch.float32 if math.prod(single.kernel_shape) < FLOAT32_EXACT_LIMIT else torch.float64
    with torch.no_grad(), exact_algorithms():
        ones = torch.ones(single.data_shape, dtype=dtype)
        taps = apply_op(single, ones, torch.ones(single.kernel_shape, dtype=dtype)).numpy()
    mask = taps > 0
    mask.flags.writeable = False
    return mask


# --- float32 where it is exact ---------------------------------------------------

FLOAT32_EXACT_LIMIT = 1 << 24         # every integer of magnitude <= 2**24 is a float32


def _integer_valued_max(array: np.ndarray, chunk: int = 1 << 22) -> float | None:
    """max |array| if every value is an integer, else None (chunked: no full-size temporaries)."""
    flat = array.reshape(-1)
    largest = 0.0
    for begin in range(0, flat.size, chunk):
        part = flat[begin:begin + chunk]
        if not np.array_equal(np.rint(part), part):
            return None
        if part.size:
            largest = max(largest, float(np.max(np.abs(part))))
    return largest


@contextmanager
def exact_algorithms():
    """torch's convolutions by algorithms that only multiply and add the inputs (what makes float32
    exact for ``exact_dtype``'s inputs): NNPACK, whose Winograd and FFT transforms divide, is off.
    oneDNN's convolutions in torch are direct (no Winograd) and checked by the property tests."""
    import torch
    with torch.backends.nnpack.flags(enabled=False):
        yield


def exact_dtype(case: Case, data: np.ndarray, kernel: np.ndarray) -> torch.dtype:
    """float32 when float32 arithmetic is provably exact for these inputs, else float64.

    With integer-valued data and kernel, every product and every partial sum
    (in any order) of output and magnitude is an integer bounded by
    ``max|x| * max|w| * K`` (K = products per output element). When that bound
    is below 2**24, each of them is a float32 exactly, so a float32 convolution
    returns the float64 result bit for bit, at a fraction of the time. Anything
    else (e.g. ``fill: uniform``) keeps float64. torch must not downconvert
    float32 convolutions (TF32/bf16 math modes): checked, else float64.
    """
    import torch
    fp32_mode = getattr(getattr(torch.backends.mkldnn, "conv", None), "fp32_precision", "none")
    if fp32_mode not in ("none", "ieee"):
        return torch.float64
    data_max = _integer_valued_max(data)
    kernel_max = _integer_valued_max(kernel)
    if data_max is None or kernel_max is None:
        return torch.float64
    bound = data_max * kernel_max * case.geometry().accumulation_length
    return torch.float32 if bound < FLOAT32_EXACT_LIMIT else torch.float64
