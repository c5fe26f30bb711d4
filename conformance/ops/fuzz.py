"""Hypothesis strategies of random *valid* cases, per op (``Op.strategy`` / ``Op.edge_strategy``).

Each strategy draws ``(op name, fields)``: the fields of one spec-style case. The draws every
convolution shares (rank, channels, kernel, strides, dilations, auto_pad, pads) are here; what
depends on the op's kind (which input sizes are valid, output_padding, output_shape) is the
``*_fields`` function its module passes in. hypothesis is imported only when a strategy is built
(it is a test dependency). Sizes stay tiny (the literal reference loops in Python).
"""
from __future__ import annotations

AUTO_PADS = ("explicit", "same_upper", "same_lower", "valid")
HUGE_STRIDE = 2 ** 40   # spec-valid (any positive integer), representable in every index type used


def _dilated(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


def configs(op, specific, **options):
    """Random valid cases of ``op``: 1D/2D/3D, groups (depthwise, G=1; always 1 for an ungrouped op),
    strides, dilations, asymmetric and (opt-in) negative pads, every auto_pad, plus ``specific``'s."""
    from hypothesis import strategies as st

    @st.composite
    def draw_config(draw):
        rank = draw(st.integers(1, 3))
        if draw(st.booleans()):
            groups, c_in, c_out = draw(st.integers(1, 4)), 1, 1          # depthwise (or G=1, 1x1 channels)
        else:
            groups = draw(st.integers(1, 3))
            c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        if not op.grouped:
            groups = 1
        batch = draw(st.integers(1, 2))
        max_kernel = 4 if rank < 3 else 3
        kernel = [draw(st.integers(1, max_kernel)) for _ in range(rank)]
        strides = [draw(st.integers(1, 3)) for _ in range(rank)]
        dilations = [draw(st.integers(1, 3)) for _ in range(rank)]
        auto_pad = draw(st.sampled_from(AUTO_PADS))
        negative = options.get("negative_pads", True) and auto_pad == "explicit" and draw(st.integers(0, 4)) == 0
        low = -2 if negative else 0
        pads_begin = [draw(st.integers(low, 3)) for _ in range(rank)]
        pads_end = [draw(st.integers(low, 3)) for _ in range(rank)]
        fields = {"strides": strides, "dilations": dilations, "pads_begin": pads_begin, "pads_end": pads_end,
                  "auto_pad": auto_pad}
        spatial = specific(draw, st, fields, kernel, rank, **options)
        fields = {
            "data": [batch, groups * c_in] + spatial,
            "kernel": list(op.kernel_shape_for(groups, c_in, c_out, kernel)),
            **fields,
        }
        if negative:
            fields["allow_negative_pads"] = True
        fields["fill"] = "uniform"
        fields["seed"] = draw(st.integers(0, 2**32 - 1))
        return op.name, fields

    return draw_config()


def convolution_fields(draw, st, fields, kernel, rank, **_):
    """Input sizes where at least one window fits and negative pads leave some input."""
    spatial = []
    max_extent = 7 if rank < 3 else 4
    auto_pad = fields["auto_pad"]
    for axis in range(rank):
        dk = _dilated(kernel[axis], fields["dilations"][axis])
        smallest = 1
        if auto_pad in ("explicit", "valid"):
            begin, end = fields["pads_begin"][axis], fields["pads_end"][axis]
            pads = begin + end if auto_pad == "explicit" else 0
            smallest = max(1, dk - pads, 1 - min(begin, 0) - min(end, 0))
        spatial.append(draw(st.integers(smallest, smallest + max_extent)))
    return spatial


def backprop_fields(draw, st, fields, kernel, rank, output_shape: bool = True, **_):
    """Any input size; output_padding below max(stride, dilation); sometimes output_shape."""
    from hypothesis import assume
    max_extent = 7 if rank < 3 else 4
    spatial = [draw(st.integers(1, 1 + max_extent)) for _ in range(rank)]
    strides, dilations = fields["strides"], fields["dilations"]
    output_padding = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dilations)]
    fields["output_padding"] = output_padding
    full = [s * (x - 1) + _dilated(k, d) for x, k, s, d in zip(spatial, kernel, strides, dilations)]
    if output_shape and draw(st.booleans()):
        # total_padding = full - output_shape + output_padding, kept >= 0 (the spec's pads are >= 0)
        totals = [draw(st.integers(0, min(f + p - 1, 6))) for f, p in zip(full, output_padding)]
        fields["output_shape"] = [f + p - t for f, p, t in zip(full, output_padding, totals)]
    elif fields["auto_pad"] == "explicit":
        # The crop must leave at least one element and never reach past the full result.
        for f, b, e, p in zip(full, fields["pads_begin"], fields["pads_end"], output_padding):
            assume(f - b - e + p >= 1 and b < f and e - p < f)
    return spatial


def edge_configs(op, specific, huge_strides: bool = True):
    """Random valid cases at the edges the spec allows and frameworks do not (see ``*_edge_fields``);
    strides of 2**40 (1 in 4 axes) unless ``huge_strides=False``. Integer fill, so the oracle may
    take its float32 shortcut."""
    from hypothesis import strategies as st

    @st.composite
    def draw_config(draw):
        rank = draw(st.integers(1, 2))
        groups, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
        if not op.grouped:
            groups = 1
        kernel = [draw(st.integers(1, 3)) for _ in range(rank)]
        strides = [draw(st.sampled_from((1, 2, 3, 5, HUGE_STRIDE) if huge_strides else (1, 2, 3, 5)))
                   for _ in range(rank)]
        dilations = [draw(st.integers(1, 3)) for _ in range(rank)]
        auto_pad = draw(st.sampled_from(AUTO_PADS))
        fields = {"strides": strides, "dilations": dilations, "auto_pad": auto_pad}
        spatial, pads_begin, pads_end = specific(draw, st, fields, kernel)
        fields.update({
            "data": [draw(st.integers(1, 2)), groups * c_in] + spatial,
            "kernel": list(op.kernel_shape_for(groups, c_in, c_out, kernel)),
            "pads_begin": pads_begin, "pads_end": pads_end,
            "fill": "integers", "seed": draw(st.integers(0, 2**32 - 1)),
        })
        return op.name, fields

    return draw_config()


def convolution_edge_fields(draw, st, fields, kernel):
    """Pads larger than the input."""
    spatial, pads_begin, pads_end = [], [], []
    for k, d in zip(kernel, fields["dilations"]):
        b, e = draw(st.integers(0, 9)), draw(st.integers(0, 9))
        smallest = max(1, _dilated(k, d) - (b + e if fields["auto_pad"] == "explicit" else 0))
        spatial.append(draw(st.integers(smallest, smallest + 4)))
        pads_begin.append(b)
        pads_end.append(e)
    return spatial, pads_begin, pads_end


def backprop_edge_fields(draw, st, fields, kernel):
    """``output_padding`` up to ``max(stride, dilation) + 4`` (PyTorch stops below
    ``max(stride, dilation)``), explicit pads that crop into the appended zeros or past the full
    result, ``output_shape`` smaller or larger than the full result, output sizes of 1."""
    with_output_shape = draw(st.booleans())
    spatial, pads_begin, pads_end, output_padding, output_shape = [], [], [], [], []
    auto_pad = fields["auto_pad"]
    for k, s, d in zip(kernel, fields["strides"], fields["dilations"]):
        # A huge stride with X > 1 makes the full result ~2**40 long: over any memory budget.
        x = 1 if s == HUGE_STRIDE else draw(st.integers(1, 5))
        p = draw(st.integers(0, min(max(s, d), 8) + 4))
        full = s * (x - 1) + _dilated(k, d)
        if with_output_shape:
            output_shape.append(draw(st.integers(1, full + p + 4)))   # up to 4 beyond the result
            b = e = draw(st.integers(0, 3))                           # ignored with output_shape
        elif auto_pad == "explicit" and p and draw(st.booleans()):
            y = draw(st.integers(1, p))                               # only appended zeros left:
            b, e = full + p - y, 0                                    # pads_begin >= the full result
        elif auto_pad == "explicit":
            y = draw(st.integers(1, full + p))
            b = draw(st.integers(0, full + p - y))                   # may crop into the zeros
            e = full + p - y - b
        else:
            b = e = draw(st.integers(0, 3))                           # ignored: pads are 0
        spatial.append(x)
        output_padding.append(p)
        pads_begin.append(b)
        pads_end.append(e)
    fields["output_padding"] = output_padding
    if with_output_shape:
        fields["output_shape"] = output_shape
    return spatial, pads_begin, pads_end
