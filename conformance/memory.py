"""The memory model of one check: when the oracle streams, and how many bytes a check needs.

It describes the oracle (``oracle.py``: whole, or by slabs of output planes) and the comparison;
each op says what its oracle's intermediate tensor is (``Op.intermediate_elements``,
``Op.slab_intermediate_fraction``). case.py refuses cases over the memory budget with it, the
plugin skips slow ones.
"""
from __future__ import annotations

from dataclasses import replace
from math import prod
from typing import TYPE_CHECKING

from . import ops
from .settings import DEFAULT_MEMORY_BUDGET, format_size, parse_size  # noqa: F401 (re-exported)

if TYPE_CHECKING:
    from .schema import Case


# Above this many output elements the oracle is computed and compared in slabs of
# output planes (oracle.reference_slabs + compare.StreamingComparison) instead of
# whole: 32M elements = 512 MB of float64 output + magnitude.
STREAM_THRESHOLD_ELEMENTS = 1 << 25
# Elements per slab: output planes plus the input rows they read (``slab_planes``). Each slab's
# oracle holds several copies of its input halo (converted, padded, channels-last, |x|) beside
# its output and magnitude, so counting the output alone let a GroupConvolution slab (input
# planes 3x the output's) add ~1 GB on top of OpenVINO's output; 16M elements: ~0.3 GB.
SLAB_ELEMENTS = 1 << 24


def slab_planes(case: Case, elements: int = SLAB_ELEMENTS) -> int:
    """Output planes per slab (along the first spatial axis) so that a slab's output plus the
    input rows it reads come to about ``elements``: a convolution reads ``stride`` input rows per
    output plane, a transposed one ``1 / stride``."""
    op = ops.get(case.op)
    output_shape = op.geometry(case).output_shape
    output_plane = prod(output_shape[:2]) * prod(output_shape[3:])
    input_plane = prod(case.data_shape[:2]) * prod(case.data_shape[3:])
    stride = case.strides[0]
    rows = 1 / stride if op.transposed else stride
    return max(1, int(elements // max(1, output_plane + input_plane * rows)))


def streamed(case: Case) -> bool:
    """True when ``case`` is checked slab by slab (its output is above ``STREAM_THRESHOLD_ELEMENTS``)."""
    return prod(case.geometry().output_shape) > STREAM_THRESHOLD_ELEMENTS


def footprint_bytes(case: Case) -> int:
    """Estimated peak bytes one check of ``case`` allocates (pure arithmetic, allocates nothing).

    Whole path: f32 inputs and the device's output (with its copy), plus the
    float64 oracle: data, kernel and their absolute values, the padded input
    (GroupConvolution) or the uncropped transposed result (BackpropData), the
    output and its magnitude. Streamed path (``streamed``): f32 inputs and the
    device's output (a view, no copy) plus one slab's worth of the float64
    oracle and comparison (input halo, intermediate, output, magnitude and
    ~6 comparison temporaries). The runtime's own scratch memory is not counted.
    """
    op = ops.get(case.op)
    geometry = op.geometry(case)
    data, kernel, output = prod(case.data_shape), prod(case.kernel_shape), prod(geometry.output_shape)
    spatial = case.data_shape[2:]
    intermediate = op.intermediate_elements(case, geometry)
    if streamed(case):
        depth = geometry.output_shape[2]
        planes = slab_planes(case)
        # A slab reads about (planes * stride + kernel extent) input planes.
        extent = op.extents(case)[0]
        fraction = min(1.0, (planes * case.strides[0] + extent) / max(1, spatial[0]))
        slab = planes * (output // depth)
        # A convolution's intermediate is the padded halo; a transposed one's the uncropped slab.
        kept = op.slab_intermediate_fraction(fraction, planes, depth)
        slab_bytes = 8 * (2 * int(data * fraction) + 2 * int(intermediate * kept) + 8 * slab)
        return 4 * (data + kernel + output) + slab_bytes
    f32 = 4 * (data + kernel + 2 * output)
    f64 = 8 * (2 * data + 2 * kernel + 2 * intermediate + 2 * output)
    return f32 + f64


def memory_culprit(case: Case, budget: int) -> str:
    """The field to blame for a case over the memory budget: the first attribute whose neutral value
    (pads 0, strides/dilations 1, no output_padding/output_shape) brings it within the budget; else data."""
    rank = case.spatial_rank
    neutral = {"output_shape": None, "output_padding": (0,) * rank, "pads_end": (0,) * rank,
               "pads_begin": (0,) * rank, "dilations": (1,) * rank, "strides": (1,) * rank}
    for name, value in neutral.items():
        if getattr(case, name) in (None, value):
            continue
        try:
            if 0 < footprint_bytes(replace(case, **{name: value})) <= budget:
                return name
        except (ValueError, ArithmeticError):
            continue
    return "data"


