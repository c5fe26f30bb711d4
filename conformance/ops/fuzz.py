"""How to draw random cases of each op: the draws the op modules share.

Two kinds of drawing, over the same spaces:

* hypothesis strategies of random *valid* cases (``Op.strategy`` / ``Op.edge_strategy``), for the
  property tests. Each draws ``(op name, fields)``: the fields of one spec-style case. The draws
  every convolution shares (rank, channels, kernel, strides, dilations, auto_pad, pads) are here;
  what depends on the op's kind (which input sizes are valid, output_padding, output_shape) is the
  ``*_fields`` function its module passes in. hypothesis is imported only when a strategy is built
  (it is a test dependency). Sizes stay tiny (the literal reference loops in Python).
* the fuzzing campaign's generators (``Op.fuzz_fields`` / ``Op.fuzz_classes``, the second half of
  this module), drawn from a seeded ``random.Random`` so a seed gives one sequence: a flat
  *parameter* dict (``batch``, ``groups``, ``c_in``, ``c_out``, ``spatial``, ``kernel``, ``strides``,
  ``dilations``, ``pads_begin``, ``pads_end``, ``auto_pad``, BackpropData's ``output_padding`` /
  ``output_shape`` / ``output_shape_input``, ``element_type``, ``kernel_input``, ``dynamic``,
  ``seed``) that ``conformance.fuzzing.strategies.document`` turns into a case file, and the
  attribute classes a finding's signature and the registry use. Wider than the hypothesis spaces
  (SIMD-tail channel counts, kernels larger than the input, large pads, element types, dynamic
  shapes), and only ever drawing cases the trust check accepts (see ``clamp_taps``).
"""
from __future__ import annotations

import math
import random

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


# --- the fuzzing campaign's generators (random.Random) -------------------------------------

# Channels per group: SIMD tails around 8/16-lane vectors, plus 1.
CHANNELS_PER_GROUP = (1, 1, 1, 2, 3, 4, 7, 8, 13, 16, 17, 33)
ELEMENT_TYPE_DRAWS = ("f32",) * 12 + ("f16", "bf16", "i8", "u8", "i32", "f64")


def _groups_and_channels(rng: random.Random) -> tuple[int, int, int]:
    """GROUPS, C_IN and C_OUT per group: GROUPS = 1, depthwise, small grouped, many groups."""
    kind = rng.choice(("one", "depthwise", "grouped", "large"))
    if kind == "one":
        return 1, rng.choice(CHANNELS_PER_GROUP), rng.choice(CHANNELS_PER_GROUP)
    if kind == "depthwise":
        return rng.choice((2, 3, 4, 7, 8, 13, 16, 17, 32, 33)), 1, 1
    if kind == "grouped":
        return rng.choice((2, 3, 4)), rng.choice(CHANNELS_PER_GROUP), rng.choice(CHANNELS_PER_GROUP)
    groups = rng.choice((8, 16, 17, 32))
    return groups, rng.choice((1, 2)), rng.choice((1, 2, 3))


def clamp_taps(params: dict) -> None:
    """Fewer input channels per group / a smaller kernel until every kernel weight of an output channel
    can be nonzero in the default integer fill and still sum exactly in the element type
    (``element_types.exact_taps_limit``: i8 14, u8 and bf16 28 taps). Beyond it the fill zeroes weights
    (``inputs.max_nonzero_taps``), and outputs reached only by zeroed taps make the reference mostly
    zeros: a case the trust check refuses. The largest factor shrinks first."""
    from ..element_types import default_integer_range, exact_taps_limit
    limit = exact_taps_limit(default_integer_range(params["element_type"]), (params["element_type"],))
    if limit is None:
        return
    while params["c_in"] * math.prod(params["kernel"]) > limit:
        largest = max(params["kernel"])
        if params["c_in"] >= largest:
            params["c_in"] = max(1, params["c_in"] // 2)
        else:
            params["kernel"][params["kernel"].index(largest)] -= 1


def common_fields(rng: random.Random, op, max_channels: int) -> dict:
    """The parameters every convolution shares: rank, batch, groups/channels, kernel, strides,
    dilations, pads, element type, Const or Parameter kernel, fill seed (one group for an ungrouped op)."""
    rank = rng.choice((1, 1, 2, 2, 2, 3))
    groups, c_in, c_out = _groups_and_channels(rng)
    while groups * max(c_in, c_out) > max_channels:
        c_in, c_out = max(1, c_in // 2), max(1, c_out // 2)
        if groups * max(c_in, c_out) > max_channels:
            groups = max(1, groups // 2)
    max_extent = {1: 24, 2: 9, 3: 5}[rank]
    spatial = [rng.randint(1, max_extent) for _ in range(rank)]
    kernel = [rng.choice((1, 1, 2, 3, 3, 4, 5, 7)) if rng.random() < 0.85 else x + rng.randint(0, 2)
              for x in spatial]
    strides = [rng.choice((1, 1, 1, 2, 2, 3, 4, 5)) for _ in range(rank)]
    dilations = [rng.choice((1, 1, 1, 1, 2, 3)) for _ in range(rank)]
    auto_pad = rng.choice(AUTO_PADS)
    large = rng.random() < 0.15
    pads_begin = [rng.randint(0, 9 if large else 3) for _ in range(rank)]
    pads_end = [rng.randint(0, 9 if large else 3) for _ in range(rank)]
    if rng.random() < 0.2 and rank > 0:   # stride on an axis whose output size is 1
        axis = rng.randrange(rank)
        strides[axis] = rng.choice((2, 3, 7))
    params = {
        "batch": rng.choice((1, 1, 1, 2, 3)), "groups": groups if op.grouped else 1, "c_in": c_in, "c_out": c_out,
        "spatial": spatial, "kernel": kernel, "strides": strides, "dilations": dilations,
        "pads_begin": pads_begin, "pads_end": pads_end, "auto_pad": auto_pad,
        "element_type": rng.choice(ELEMENT_TYPE_DRAWS),
        "kernel_input": "parameter" if rng.random() < 0.15 else "const",
        "seed": rng.randrange(2 ** 32),
    }
    clamp_taps(params)
    return params


def maybe_dynamic(rng: random.Random, params: dict) -> None:
    """Sometimes: dynamic batch/spatial dims, with 1-2 more shapes inferred on the same compiled model."""
    if rng.random() < 0.15:
        extra = []
        for _ in range(rng.randint(1, 2)):
            extra.append([rng.randint(1, 2)] + [max(1, x + rng.randint(-2, 3)) for x in params["spatial"]])
        params["dynamic"] = extra


def convolution_draw(rng: random.Random, op, max_channels: int) -> dict:
    """A random (Group)Convolution parameter dict (may be invalid: loading the case decides)."""
    params = common_fields(rng, op, max_channels)
    if params["auto_pad"] in ("explicit", "valid"):
        # Make one window fit most of the time (the loader refuses output sizes < 1).
        for axis, x in enumerate(params["spatial"]):
            dk = _dilated(params["kernel"][axis], params["dilations"][axis])
            pads = params["pads_begin"][axis] + params["pads_end"][axis] if params["auto_pad"] == "explicit" else 0
            if x + pads < dk and rng.random() < 0.9:
                params["spatial"][axis] = dk - pads + rng.randint(0, 3)
    maybe_dynamic(rng, params)
    return params


def natural_size(params: dict, spatial=None) -> list[int]:
    """BackpropData's full transposed size per axis, output_padding included (no crop)."""
    spatial = params["spatial"] if spatial is None else spatial
    return [s * (x - 1) + _dilated(k, d) + p for x, k, s, d, p in
            zip(spatial, params["kernel"], params["strides"], params["dilations"],
                params.get("output_padding") or [0] * len(spatial))]


def backprop_draw(rng: random.Random, op, max_channels: int) -> dict:
    """A random (Group)ConvolutionBackpropData parameter dict (output_padding any >= 0, output_shape)."""
    params = common_fields(rng, op, max_channels)
    params["spatial"] = [max(1, x // 2) for x in params["spatial"]]   # the output grows by the stride
    params["output_padding"] = [rng.choice((0, 0, 0, 1, 2, 3, 5)) for _ in params["spatial"]]
    if rng.random() < 0.35:
        params["output_shape"] = [max(1, f + rng.choice((-4, -3, -2, -1, -1, 0, 0, 1, 2)))
                                  for f in natural_size(params)]
        params["output_shape_input"] = "parameter" if rng.random() < 0.25 else "const"
    elif params["auto_pad"] == "explicit":
        for axis, f in enumerate(natural_size(params)):   # the crop must leave at least one element
            while params["pads_begin"][axis] + params["pads_end"][axis] >= f:
                if params["pads_begin"][axis] >= params["pads_end"][axis]:
                    params["pads_begin"][axis] -= 1
                else:
                    params["pads_end"][axis] -= 1
    maybe_dynamic(rng, params)
    return params


def common_classes(params: dict) -> dict[str, str]:
    """The attribute classes every convolution has: ``groups`` 1 / depthwise (C_IN = C_OUT = 1 per group,
    GROUPS > 1) / grouped; ``auto_pad``; ``stride_gt_kernel`` (some axis has stride > kernel);
    ``element_type``; ``kernel_input``; ``dynamic``."""
    groups = params["groups"]
    kind = "1" if groups == 1 else ("depthwise" if params["c_in"] == 1 and params["c_out"] == 1 else "grouped")
    return {
        "groups": kind,
        "auto_pad": params["auto_pad"],
        "stride_gt_kernel": "yes" if any(s > k for s, k in zip(params["strides"], params["kernel"])) else "no",
        "element_type": params.get("element_type", "f32"),
        "kernel_input": params.get("kernel_input", "const"),
        "dynamic": "yes" if params.get("dynamic") else "no",
    }


def convolution_classes(params: dict) -> dict[str, str]:
    """``common_classes`` and ``pads_begin_gt_kernel``: an explicit pads_begin larger than the dilated
    kernel on some axis (a window wholly inside the begin padding)."""
    classes = common_classes(params)
    classes["pads_begin_gt_kernel"] = "yes" if params["auto_pad"] == "explicit" and any(
        b > _dilated(k, d) for b, k, d in zip(params["pads_begin"], params["kernel"], params["dilations"])) else "no"
    return classes


def backprop_classes(params: dict) -> dict[str, str]:
    """``common_classes`` and ``output_shape`` (none/const/parameter), ``output_shape_size``
    (smaller/equal/larger than the full result, over every inferred shape, when given),
    ``output_shape_lt_kernel`` (some axis of output_shape < (K-1)*d + 1 + output_padding),
    ``output_padding`` (0 or >0) and ``output_padding_ge_stride`` (some axis has
    0 < output_padding >= max(stride, dilation): beyond PyTorch's limit, within the spec's)."""
    classes = common_classes(params)
    output_shape = params.get("output_shape")
    output_padding = params.get("output_padding") or [0] * len(params["kernel"])
    classes["output_shape"] = "none" if output_shape is None else params.get("output_shape_input", "const")
    if output_shape is not None:
        # over every inferred data shape (dynamic cases): larger wins, then smaller
        fulls = [f for shape in [[params["batch"]] + list(params["spatial"])] + list(params.get("dynamic") or [])
                 for f in natural_size(params, list(shape[1:]))]
        pairs = [(output_shape[index % len(output_shape)], f) for index, f in enumerate(fulls)]
        if any(o > f for o, f in pairs):
            classes["output_shape_size"] = "larger"
        elif any(o < f for o, f in pairs):
            classes["output_shape_size"] = "smaller"
        else:
            classes["output_shape_size"] = "equal"
        # smaller than one input element's transposed result: (K-1)*d + 1 + output_padding
        classes["output_shape_lt_kernel"] = "yes" if any(
            o < _dilated(k, d) + p for o, k, d, p in
            zip(output_shape, params["kernel"], params["dilations"], output_padding)) else "no"
    classes["output_padding"] = ">0" if any(output_padding) else "0"
    # beyond PyTorch's limit (output_padding < max(stride, dilation)); the spec has none
    classes["output_padding_ge_stride"] = "yes" if any(
        p >= max(s, d) for p, s, d in zip(output_padding, params["strides"], params["dilations"]) if p) else "no"
    return classes
