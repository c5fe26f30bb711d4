"""Deterministic, seeded input tensors for a case.

The default fill is small integers: every product and partial sum of a
convolution over them is exactly representable in float32, so an f32 run
that differs from the float64 oracle is wrong, not rounded.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .case import Case


@dataclass(frozen=True)
class Inputs:
    """The op's tensors, in the spec's layouts, as the IR element type (f32)."""

    data: np.ndarray
    kernel: np.ndarray


INTEGER_RANGE = (-3, 3)  # inclusive; |x*w| <= 9 keeps sums exact in f32 for any realistic size


def make_inputs(case: Case) -> Inputs:
    """Inputs for ``case``, a pure function of its seed, fill and shapes."""
    rng = np.random.default_rng(case.seed)
    if case.fill == "integers":
        low, high = INTEGER_RANGE
        data = rng.integers(low, high + 1, size=case.data_shape, dtype=np.int8)
        kernel = rng.integers(low, high + 1, size=case.kernel_shape, dtype=np.int8)
        return Inputs(data.astype(np.float32), kernel.astype(np.float32))
    data = rng.uniform(-1.0, 1.0, size=case.data_shape).astype(np.float32)
    kernel = rng.uniform(-1.0, 1.0, size=case.kernel_shape).astype(np.float32)
    return Inputs(data, kernel)
