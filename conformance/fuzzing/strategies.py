"""What a valid case of each op is, for the fuzzer: generation, case documents, attribute classes.

Everything op-specific of ``conformance.fuzzing`` lives here: one generator per kind of op
(forward or transposed convolution), chosen by the op registry's properties (``transposed``,
``grouped``, ``kernel_shape_for``), so every op the harness knows is fuzzed (``GENERATORS``):
the ungrouped siblings with one group.

A fuzz case is a flat *parameter* dict (``batch``, ``groups``, ``c_in``, ``c_out``,
``spatial``, ``kernel``, ``strides``, ``dilations``, ``pads_begin``, ``pads_end``,
``auto_pad``, BackpropData's ``output_padding``/``output_shape``/``output_shape_input``,
``element_type``, ``kernel_input``, ``dynamic`` (extra data shapes inferred after the first
on one compiled model, or absent), ``seed``). ``document(op, params)`` turns it into a
normal case-file document (spec style), so every generated case and every finding is a
loadable case file. Generation draws from a ``random.Random`` only: the same seed gives
the same sequence.
"""
from __future__ import annotations

import random
from math import prod

from functools import partial

from .. import ops

AUTO_PADS = ("explicit", "same_upper", "same_lower", "valid")
# Channels per group: SIMD tails around 8/16-lane vectors, plus 1.
CHANNELS_PER_GROUP = (1, 1, 1, 2, 3, 4, 7, 8, 13, 16, 17, 33)
ELEMENT_TYPES = ("f32",) * 12 + ("f16", "bf16", "i8", "u8", "i32", "f64")
MAX_OUTPUT_ELEMENTS = 4096
MAX_CHANNELS = 64


def _groups_and_channels(rng: random.Random, max_channels: int) -> tuple[int, int, int]:
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


def _common(rng: random.Random, max_channels: int) -> dict:
    """Attributes both ops share: rank, batch, groups/channels, kernel, strides, dilations, pads."""
    rank = rng.choice((1, 1, 2, 2, 2, 3))
    groups, c_in, c_out = _groups_and_channels(rng, max_channels)
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
    return {
        "batch": rng.choice((1, 1, 1, 2, 3)), "groups": groups, "c_in": c_in, "c_out": c_out,
        "spatial": spatial, "kernel": kernel, "strides": strides, "dilations": dilations,
        "pads_begin": pads_begin, "pads_end": pads_end, "auto_pad": auto_pad,
        "element_type": rng.choice(ELEMENT_TYPES),
        "kernel_input": "parameter" if rng.random() < 0.15 else "const",
        "seed": rng.randrange(2 ** 32),
    }


def _maybe_dynamic(rng: random.Random, params: dict) -> None:
    """Sometimes: dynamic batch/spatial dims, with 1-2 more shapes inferred on the same compiled model."""
    if rng.random() < 0.15:
        extra = []
        for _ in range(rng.randint(1, 2)):
            extra.append([rng.randint(1, 2)] + [max(1, x + rng.randint(-2, 3)) for x in params["spatial"]])
        params["dynamic"] = extra


def group_convolution(rng: random.Random, max_channels: int = MAX_CHANNELS) -> dict:
    """A random GroupConvolution parameter dict (may be invalid: ``document`` + loading decides)."""
    params = _common(rng, max_channels)
    if params["auto_pad"] in ("explicit", "valid"):
        # Make one window fit most of the time (the loader refuses output sizes < 1).
        for axis, x in enumerate(params["spatial"]):
            dk = (params["kernel"][axis] - 1) * params["dilations"][axis] + 1
            pads = params["pads_begin"][axis] + params["pads_end"][axis] if params["auto_pad"] == "explicit" else 0
            if x + pads < dk and rng.random() < 0.9:
                params["spatial"][axis] = dk - pads + rng.randint(0, 3)
    _maybe_dynamic(rng, params)
    return params


def group_convolution_backprop_data(rng: random.Random, max_channels: int = MAX_CHANNELS) -> dict:
    """A random GroupConvolutionBackpropData parameter dict (output_padding any >= 0, output_shape)."""
    params = _common(rng, max_channels)
    params["spatial"] = [max(1, x // 2) for x in params["spatial"]]   # the output grows by the stride
    params["output_padding"] = [rng.choice((0, 0, 0, 1, 2, 3, 5)) for _ in params["spatial"]]
    if rng.random() < 0.35:
        full = [s * (x - 1) + (k - 1) * d + 1 + p for x, k, s, d, p in
                zip(params["spatial"], params["kernel"], params["strides"], params["dilations"],
                    params["output_padding"])]
        params["output_shape"] = [max(1, f + rng.choice((-4, -3, -2, -1, -1, 0, 0, 1, 2))) for f in full]
        params["output_shape_input"] = "parameter" if rng.random() < 0.25 else "const"
    elif params["auto_pad"] == "explicit":
        full = [s * (x - 1) + (k - 1) * d + 1 + p for x, k, s, d, p in
                zip(params["spatial"], params["kernel"], params["strides"], params["dilations"],
                    params["output_padding"])]
        for axis, f in enumerate(full):   # the crop must leave at least one element
            while params["pads_begin"][axis] + params["pads_end"][axis] >= f:
                if params["pads_begin"][axis] >= params["pads_end"][axis]:
                    params["pads_begin"][axis] -= 1
                else:
                    params["pads_end"][axis] -= 1
    _maybe_dynamic(rng, params)
    return params


def generate(op_name: str, rng: random.Random, max_channels: int = MAX_CHANNELS) -> dict:
    """A random parameter dict for the op: its kind's generator; one group for an ungrouped op."""
    op = ops.get(op_name)
    params = (group_convolution_backprop_data if op.transposed else group_convolution)(rng, max_channels)
    if not op.grouped:
        params["groups"] = 1
    params["post_ops"] = _post_ops(params)
    return params


POST_OPS_PROBABILITY = 0.15   # cases that get post-ops after the op (conformance/post_ops.py)


def _post_ops(params: dict) -> list | None:
    """Sometimes 1-3 post-ops (float element types; no sum on dynamic data). Drawn from the case's
    own seed, not the campaign's generator, so the cases a seed generated before keep their shapes."""
    rng = random.Random(params["seed"] ^ 0x706F7374)
    if rng.random() >= POST_OPS_PROBABILITY or params["element_type"] not in ("f32", "f16", "bf16", "f64"):
        return None
    kinds = ["bias", "batch_norm", "relu", "clamp"] + ([] if params.get("dynamic") else ["sum"])
    drawn = []
    for kind in (rng.choice(kinds) for _ in range(rng.randint(1, 3))):
        low = rng.choice((-6, -2, 0))   # a fresh mapping each time: a repeated object would dump as a YAML alias
        drawn.append({"clamp": {"min": low, "max": low + rng.choice((1, 4, 9))}} if kind == "clamp" else kind)
    return drawn


# The grouped ops first (the order campaigns draw ops in), then their ungrouped siblings.
GENERATORS = {name: partial(generate, name)
              for name in sorted(ops.names(), key=lambda name: (not ops.get(name).grouped, name))}


# What a campaign fuzzes unless told otherwise (--op): the grouped ops, the harness's subject.
DEFAULT_OPS = tuple(name for name in GENERATORS if ops.get(name).grouped)


def kernel_shape(op: str, params: dict) -> list[int]:
    """The op's kernel layout (e.g. GroupConvolution [G, C_OUT, C_IN, k...], BackpropData [G, C_IN, C_OUT, k...])."""
    return list(ops.get(op).kernel_shape_for(params["groups"], params["c_in"], params["c_out"], params["kernel"]))


def document(op: str, params: dict, name: str = "fuzz_case") -> dict:
    """The case-file document (``{op, cases: [entry]}``, spec style) for ``params``."""
    channels = params["groups"] * params["c_in"]
    data = [params["batch"], channels] + list(params["spatial"])
    entry = {"name": name}
    if params.get("dynamic"):
        entry["data"] = [-1, channels] + [-1] * len(params["spatial"])
        entry["infer_shapes"] = [data] + [[shape[0], channels] + list(shape[1:]) for shape in params["dynamic"]]
    else:
        entry["data"] = data
    entry["kernel"] = kernel_shape(op, params)
    for key in ("strides", "dilations", "pads_begin", "pads_end"):
        entry[key] = list(params[key])
    entry["auto_pad"] = params["auto_pad"]
    if ops.get(op).transposed:
        entry["output_padding"] = list(params.get("output_padding") or [0] * len(params["spatial"]))
        if params.get("output_shape") is not None:
            entry["output_shape"] = list(params["output_shape"])
            if params.get("output_shape_input", "const") != "const":
                entry["output_shape_input"] = params["output_shape_input"]
    if params.get("element_type", "f32") != "f32":
        entry["element_type"] = params["element_type"]
    if params.get("kernel_input", "const") != "const":
        entry["kernel_input"] = params["kernel_input"]
    if params.get("post_ops"):
        entry["post_ops"] = params["post_ops"]
    entry["seed"] = params["seed"]
    return {"op": op, "cases": [entry]}


def _natural_size(op: str, params: dict) -> list[int]:
    """BackpropData's full transposed size per axis, output_padding included (no crop)."""
    return [s * (x - 1) + (k - 1) * d + 1 + p for x, k, s, d, p in
            zip(params["spatial"], params["kernel"], params["strides"], params["dilations"],
                params.get("output_padding") or [0] * len(params["spatial"]))]


def attribute_class(op: str, params: dict) -> dict[str, str]:
    """The attribute classes of a case: the keys a finding's signature and the registry use.

    ``groups``: ``1`` / ``depthwise`` (C_IN = C_OUT = 1 per group, GROUPS > 1) / ``grouped``;
    ``auto_pad``; ``stride_gt_kernel``: yes when some axis has stride > kernel; ``element_type``;
    ``kernel_input``; ``dynamic``; GroupConvolution ``pads_begin_gt_kernel`` (explicit pads_begin
    larger than the dilated kernel on some axis); BackpropData also ``output_shape`` (none/const/parameter),
    ``output_shape_size`` (smaller/equal/larger than the full result, when given),
    ``output_shape_lt_kernel`` (some axis of output_shape < (K-1)*d + 1 + output_padding), and
    ``output_padding`` (0 or >0) and ``output_padding_ge_stride`` (yes when some axis has
    0 < output_padding >= max(stride, dilation): beyond PyTorch's limit, within the spec's).
    """
    groups = params["groups"]
    kind = "1" if groups == 1 else ("depthwise" if params["c_in"] == 1 and params["c_out"] == 1 else "grouped")
    classes = {
        "groups": kind,
        "auto_pad": params["auto_pad"],
        "stride_gt_kernel": "yes" if any(s > k for s, k in zip(params["strides"], params["kernel"])) else "no",
        "element_type": params.get("element_type", "f32"),
        "kernel_input": params.get("kernel_input", "const"),
        "dynamic": "yes" if params.get("dynamic") else "no",
    }
    transposed = ops.get(op).transposed
    if not transposed:
        # a window wholly inside the begin padding: explicit pads_begin > the dilated kernel
        classes["pads_begin_gt_kernel"] = "yes" if params["auto_pad"] == "explicit" and any(
            b > (k - 1) * d + 1 for b, k, d in zip(params["pads_begin"], params["kernel"], params["dilations"])) else "no"
    if transposed:
        output_shape = params.get("output_shape")
        classes["output_shape"] = "none" if output_shape is None else params.get("output_shape_input", "const")
        if output_shape is not None:
            # over every inferred data shape (dynamic cases): larger wins, then smaller
            fulls = [f for shape in [[params["batch"]] + list(params["spatial"])] + list(params.get("dynamic") or [])
                     for f in _natural_size(op, {**params, "spatial": list(shape[1:])})]
            pairs = [(o, f) for f_index, f in enumerate(fulls) for o in [output_shape[f_index % len(output_shape)]]]
            if any(o > f for o, f in pairs):
                classes["output_shape_size"] = "larger"
            elif any(o < f for o, f in pairs):
                classes["output_shape_size"] = "smaller"
            else:
                classes["output_shape_size"] = "equal"
            # smaller than one input element's transposed result: (K-1)*d + 1 + output_padding
            classes["output_shape_lt_kernel"] = "yes" if any(
                o < (k - 1) * d + 1 + p for o, k, d, p in
                zip(output_shape, params["kernel"], params["dilations"],
                    params.get("output_padding") or [0] * len(params["kernel"]))) else "no"
        classes["output_padding"] = ">0" if any(params.get("output_padding") or ()) else "0"
        # beyond PyTorch's limit (output_padding < max(stride, dilation)); the spec has none
        classes["output_padding_ge_stride"] = "yes" if any(
            p >= max(s, d) for p, s, d in zip(params.get("output_padding") or (), params["strides"],
                                             params["dilations"]) if p) else "no"
    return classes


def size_ok(case, max_output_elements: int = MAX_OUTPUT_ELEMENTS, max_channels: int = MAX_CHANNELS) -> bool:
    """True when every inference of a loaded case stays small: output elements and channels."""
    for shape in case.infer_shapes or (case.data_shape,):
        geometry = case.at_data_shape(shape).geometry()
        if prod(geometry.output_shape) > max_output_elements or max(shape[1], geometry.output_shape[1]) > max_channels:
            return False
    return True
