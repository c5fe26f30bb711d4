"""The fuzzer's plumbing between an op's generator and a case file: drawing, documents, classes, size.

What a valid case of an op is, and its attribute classes, live with the op (``Op.fuzz_fields``,
``Op.fuzz_classes``, drawn with the shared helpers of ``conformance.ops.fuzz``); every op the
harness knows is fuzzed (``GENERATORS``), the ungrouped siblings with one group. Here: which op
generators exist, the case-file document of a parameter dict (``document``: every generated case
and every finding is a loadable case file), the size limit of a small case (``size_ok``) and the
geometry half of the trust check (``reaches_enough``). Generation draws from a ``random.Random``
only: the same seed gives the same sequence.
"""
from __future__ import annotations

import random
from functools import partial
from math import prod

from .. import ops

MAX_OUTPUT_ELEMENTS = 4096
MAX_CHANNELS = 64


def generate(op_name: str, rng: random.Random, max_channels: int = MAX_CHANNELS) -> dict:
    """A random parameter dict for the op (its ``fuzz_fields``), drawn from ``rng``."""
    params = ops.get(op_name).fuzz_fields(rng, max_channels)
    # Case fields any op may carry beyond its own (e.g. post-ops after the op) are drawn here, from the
    # same ``rng`` after the op's fields, and written by ``document``: one place for every op.
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


def attribute_class(op: str, params: dict) -> dict[str, str]:
    """The attribute classes of a case (``Op.fuzz_classes``): the keys a finding's signature and the
    registry use, e.g. ``groups`` 1/depthwise/grouped, ``auto_pad``, ``stride_gt_kernel``,
    ``element_type``; GroupConvolution's ``pads_begin_gt_kernel``; BackpropData's ``output_shape``,
    ``output_shape_size``, ``output_padding_ge_stride`` (``conformance.ops.fuzz``)."""
    return ops.get(op).fuzz_classes(params)


def size_ok(case, max_output_elements: int = MAX_OUTPUT_ELEMENTS, max_channels: int = MAX_CHANNELS) -> bool:
    """True when every inference of a loaded case stays small: output elements and channels."""
    for shape in case.infer_shapes or (case.data_shape,):
        geometry = case.at_data_shape(shape).geometry()
        if prod(geometry.output_shape) > max_output_elements or max(shape[1], geometry.output_shape[1]) > max_channels:
            return False
    return True


def needs_the_oracle_to_draw(case) -> bool:
    """True when ``post_ops_keep_the_op_visible`` needs the case's oracle (it has a ReLU or Clamp)."""
    return any(post_op.kind in ("relu", "clamp") for post_op in case.post_ops)


def post_ops_keep_the_op_visible(case, steps=None) -> bool:
    """False when the drawn ReLU/Clamp post-ops would set nearly every output to a constant
    (``post_ops.trust_problem``: the trust check refuses such a case). Needs the op's output, so it
    computes the oracle (``steps``: ``api.prepare(case)`` when already made), only for cases with a
    ReLU or Clamp."""
    from .. import post_ops
    if not needs_the_oracle_to_draw(case):
        return True
    if steps is None:
        from ..api import prepare
        steps = prepare(case)
    return all(post_ops.trust_problem(case, step.reference.op_output) is None for step in steps)


def reaches_enough(case) -> bool:
    """True when, for every inference of a loaded case, kernel taps reach at least
    ``compare.MIN_REACHED_FRACTION`` of the output elements (``api.reached``, the geometry the trust
    check uses): otherwise the reference is mostly the pads' zeros and the check refuses the case."""
    from ..taps import reached
    from ..compare import MIN_REACHED_FRACTION
    for shape in case.infer_shapes or (case.data_shape,):
        mask = reached(case.at_data_shape(shape) if case.dynamic else case)
        if mask.size and mask.sum() < MIN_REACHED_FRACTION * mask.size:
            return False
    return True
