"""Post-ops: what real models put right after the op, so the CPU plugin fuses it into the primitive.

A case may list ``post_ops:`` applied, in order, to the op's output (README "Post-ops"):

* ``bias``: Add of a per-output-channel constant, broadcast as ``[1, C_OUT, 1, ...]``;
* ``batch_norm``: a folded BatchNorm, Multiply by a per-channel ``scale`` then Add a ``shift``;
* ``relu``: ReLU-1, ``max(x, 0)``;
* ``clamp``: Clamp-1 with ``min``/``max``;
* ``sum``: Add of a second input of the output's shape (a Parameter fed at inference time).

Values come from the case's seeded fill (each post-op and tensor its own derived seed), or explicit
lists. This module holds everything about them: parsing and checking the field (located errors),
the values, the IR nodes (templates ``ir_templates/{Add,Multiply,ReLU,Clamp}.xml``), the float64
oracle (OpenVINO's Add/Multiply/Relu/Clamp with numpy broadcast), the terms the tolerance needs,
the trust check (ReLU/Clamp must not saturate nearly every output), and the record of which
post-ops the CPU plugin fused into the op's node (read from the runtime model).

Only numpy is imported at module level: the stages that render import lxml themselves.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .element_types import fill_integer_range, to_element_type

KINDS = ("bias", "batch_norm", "relu", "clamp", "sum")
FLOAT_TYPES = ("f32", "f16", "bf16", "f64")
NODE_PREFIX = "post_op"     # IR layer names: post_op.<index>.<kind>[.<part>]
ALLOWED = ("a list of post-ops applied in order after the op: bias (or bias: [one value per output "
           "channel]), batch_norm (or batch_norm: {scale: [...], shift: [...]}), relu, "
           "clamp: {min: <number>, max: <number>} (min <= max), sum (Add of a second input of the output's "
           "shape, fed at inference time); values not listed come from the case's seeded fill")
# Beyond this fraction of outputs saturated by ReLU/Clamp (a constant whatever the op computed),
# a device that got the op wrong would still mostly match: the item is refused as untrustworthy.
MAX_SATURATED_FRACTION = 0.9


@dataclass(frozen=True)
class PostOp:
    """One post-op as the case gives it; ``None`` values are drawn from the seeded fill."""

    kind: str
    scale: tuple[float, ...] | None = None     # batch_norm: per output channel
    shift: tuple[float, ...] | None = None     # bias, batch_norm: per output channel
    minimum: float | None = None               # clamp
    maximum: float | None = None               # clamp
    addend: tuple[float, ...] | None = None    # sum: explicit values (C order), per-group slices only

    def label(self) -> str:
        """How reports name it: the kind, with clamp's bounds."""
        return f"clamp[{self.minimum:g},{self.maximum:g}]" if self.kind == "clamp" else self.kind

    def layers(self, index: int) -> tuple[str, ...]:
        """The IR layer names this post-op renders as."""
        base = f"{NODE_PREFIX}.{index}.{self.kind}"
        return (f"{base}.scale", f"{base}.shift") if self.kind == "batch_norm" else (base,)


class PostOpError(ValueError):
    """A problem with one item of ``post_ops`` (``schema.FieldError`` with the item's line)."""


# --- parsing -------------------------------------------------------------------------------

def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def _numbers(value, what: str) -> tuple[float, ...]:
    if not isinstance(value, list) or not value or not all(_number(item) for item in value):
        raise PostOpError(f"{what}: expected a non-empty list of finite numbers, got {_short(value)}")
    return tuple(float(item) for item in value)


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _item(raw) -> PostOp:
    if isinstance(raw, str):
        if raw == "clamp":
            raise PostOpError("clamp needs its bounds: clamp: {min: <number>, max: <number>}")
        if raw not in KINDS:
            raise PostOpError(f"unknown post-op {_short(raw)} (known: {', '.join(KINDS)})")
        return PostOp(raw)
    if not isinstance(raw, dict) or len(raw) != 1:
        raise PostOpError(f"expected a post-op name or a one-key mapping {{name: parameters}}, got {_short(raw)}")
    (kind, parameters), = raw.items()
    if kind not in KINDS:
        raise PostOpError(f"unknown post-op {_short(kind)} (known: {', '.join(KINDS)})")
    if kind == "bias":
        return PostOp(kind, shift=_numbers(parameters, "bias"))
    if kind in ("relu", "sum"):
        raise PostOpError(f"{kind} takes no parameters: write '- {kind}'")
    expected = {"batch_norm": ("scale", "shift"), "clamp": ("min", "max")}[kind]
    if not isinstance(parameters, dict) or not set(parameters) <= set(expected):
        raise PostOpError(f"{kind}: expected a mapping with {' and/or '.join(expected)}, got {_short(parameters)}")
    if kind == "batch_norm":
        return PostOp(kind, **{name: _numbers(parameters[name], f"batch_norm.{name}")
                               for name in expected if name in parameters})
    if set(parameters) != set(expected) or not all(_number(parameters[name]) for name in expected):
        raise PostOpError(f"clamp: expected {{min: <number>, max: <number>}}, got {_short(parameters)}")
    if parameters["min"] > parameters["max"]:
        raise PostOpError(f"clamp: min {parameters['min']} > max {parameters['max']}")
    return PostOp(kind, minimum=float(parameters["min"]), maximum=float(parameters["max"]))


def parse(value) -> tuple[PostOp, ...]:
    """The ``post_ops`` field -> post-ops; a bad item raises ``FieldError`` naming the item and its line."""
    from .ops import FieldError
    if not isinstance(value, list) or not value:
        raise FieldError("", f"expected a non-empty list of post-ops, got {_short(value)}")
    parsed = []
    lines = getattr(value, "item_lines", None)
    for index, raw in enumerate(value):
        try:
            parsed.append(_item(raw))
        except PostOpError as problem:
            error = FieldError(f"[{index}]", str(problem))
            error.line = lines[index] if lines else None   # the item's own line (case.py locates it)
            raise error from None
    return tuple(parsed)


def relation_problem(case) -> str | None:
    """What is wrong with ``case.post_ops`` given the rest of the case (None when nothing)."""
    if not case.post_ops:
        return None
    if case.element_type not in FLOAT_TYPES:
        return (f"post-ops are tested on floating-point element types ({', '.join(FLOAT_TYPES)}), "
                f"not {case.element_type} (Clamp rounds its bounds for integers)")
    channels = case.geometry().output_shape[1]
    for index, post_op in enumerate(case.post_ops):
        for name in ("scale", "shift"):
            values = getattr(post_op, name)
            if values is not None and len(values) != channels:
                what = "bias" if post_op.kind == "bias" else f"batch_norm.{name}"
                return f"[{index}] {what} has {len(values)} values; the output has {channels} channels (C_OUT)"
        if post_op.kind == "sum" and case.dynamic:
            return f"[{index}] sum needs a static output shape (its input has the output's shape); data is dynamic"
    return None


def as_yaml(case) -> str | None:
    """``case.post_ops`` as the case field's value (YAML flow style), explicit values included."""
    if not case.post_ops:
        return None
    def numbers(values):
        return "[" + ", ".join(f"{value:g}" for value in values) + "]"
    items = []
    for post_op in case.post_ops:
        if post_op.kind == "clamp":
            items.append(f"{{clamp: {{min: {post_op.minimum:g}, max: {post_op.maximum:g}}}}}")
        elif post_op.kind == "bias" and post_op.shift is not None:
            items.append(f"{{bias: {numbers(post_op.shift)}}}")
        elif post_op.kind == "batch_norm" and (post_op.scale or post_op.shift):
            given = [f"{name}: {numbers(getattr(post_op, name))}" for name in ("scale", "shift")
                     if getattr(post_op, name) is not None]
            items.append(f"{{batch_norm: {{{', '.join(given)}}}}}")
        else:
            items.append(post_op.kind)
    return "[" + ", ".join(items) + "]"


def benchdnn(case) -> tuple[str, str]:
    """(``--dir``, ``--attr-post-ops=...`` or "") of oneDNN benchdnn for the post-ops: a leading bias
    is the primitive's own bias (FWD_B); per-channel Multiply/Add are binary per_oc post-ops."""
    kinds = list(case.post_ops)
    direction = "FWD_B" if kinds and kinds[0].kind == "bias" else "FWD_I"
    parts = []
    for index, post_op in enumerate(kinds):
        if post_op.kind == "bias":
            parts += [] if index == 0 else ["add:f32:per_oc"]
        elif post_op.kind == "batch_norm":
            parts += ["mul:f32:per_oc", "add:f32:per_oc"]
        elif post_op.kind == "clamp":
            parts.append(f"clip:{post_op.minimum:g}:{post_op.maximum:g}")
        else:
            parts.append(post_op.kind)   # relu, sum
    return direction, (f"--attr-post-ops={'+'.join(parts)} " if parts else "")


def describe(case) -> str:
    """One line for failure messages and the report: ``post_ops=bias,relu`` (empty without post-ops)."""
    return f" post_ops={','.join(post_op.label() for post_op in case.post_ops)}" if case.post_ops else ""


# --- values --------------------------------------------------------------------------------

_CACHE: dict = {}
_CACHE_SIZE = 4
_PARTS = {"scale": 1, "shift": 2, "addend": 3}


def _key(case) -> tuple:
    return (case.id, case.seed, case.fill, case.fill_range, case.element_type, case.post_ops,
            case.geometry().output_shape[:2] if not any(p.kind == "sum" for p in case.post_ops)
            else case.geometry().output_shape)


def values(case) -> tuple[dict[str, np.ndarray], ...]:
    """Per post-op, its tensors (``scale``, ``shift`` as [C_OUT]; ``addend`` as the output's shape) in the
    case's element type (bf16: float32 holder): explicit ones as given (rounded to the element type),
    the others drawn from the case's fill with seeds derived from the case's seed and the post-op's
    index, so render, oracle and feeds agree without passing arrays around."""
    key = _key(case)
    if key in _CACHE:
        return _CACHE[key]
    channels = case.geometry().output_shape[1]
    result = []
    for index, post_op in enumerate(case.post_ops):
        tensors = {}
        wanted = {"bias": ("shift",), "batch_norm": ("scale", "shift"), "sum": ("addend",)}.get(post_op.kind, ())
        for part in wanted:
            shape = case.geometry().output_shape if part == "addend" else (channels,)
            given = getattr(post_op, part)
            tensors[part] = (_element(np.asarray(given, dtype=np.float64).reshape(shape), case.element_type)
                             if given is not None else _draw(case, [case.seed, 0x706F7374, index, _PARTS[part]], shape))
        result.append(tensors)
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = tuple(result)
    return _CACHE[key]


def _element(array: np.ndarray, element_type: str) -> np.ndarray:
    return to_element_type(array, element_type)


def _draw(case, seed, shape) -> np.ndarray:
    """The case's fill (as ``inputs.py`` draws data) for one post-op tensor."""
    rng = np.random.default_rng(seed)
    if case.fill == "integers":
        low, high = fill_integer_range(case.fill_range, case.element_type)
        if case.fill_range is None:   # the default fill: nonzero values only
            choices = np.array([v for v in range(low, high + 1) if v != 0], dtype=np.float64)
            return _element(choices[rng.integers(0, len(choices), size=shape)], case.element_type)
        return _element(rng.integers(low, high + 1, size=shape).astype(np.float64), case.element_type)
    return _element(rng.uniform(-1.0, 1.0, size=shape), case.element_type)


def channel_slice(case, start: int, stop: int) -> tuple[PostOp, ...]:
    """``case``'s post-ops restricted to output channels ``start:stop``, every value explicit
    (the per-group check runs each group as its own model)."""
    sliced = []
    for post_op, tensors in zip(case.post_ops, values(case)):
        explicit = {part: tuple(float(v) for v in (array[start:stop] if part != "addend"
                                                   else array[:, start:stop]).reshape(-1))
                    for part, array in tensors.items()}
        sliced.append(PostOp(post_op.kind, minimum=post_op.minimum, maximum=post_op.maximum, **explicit))
    return tuple(sliced)


# --- the oracle ----------------------------------------------------------------------------

def apply(case, output: np.ndarray, magnitude: np.ndarray, planes: slice | None = None
          ) -> tuple[np.ndarray, np.ndarray]:
    """The post-ops on the op's float64 ``output`` (OpenVINO's Add/Multiply/Relu/Clamp, numpy
    broadcast) and on its ``magnitude`` (sum of |terms|, README "Tolerances"): Add of b adds |b|,
    Multiply by a scales by |a|, ReLU/Clamp leave it (they are 1-Lipschitz: they add no error).
    ``planes``: the slab of output planes (axis 2) ``output`` holds (the streaming oracle)."""
    if not case.post_ops:
        return output, magnitude
    output, magnitude = np.array(output, dtype=np.float64), np.array(magnitude, dtype=np.float64)
    _chain(case, output, magnitude, planes)
    return output, magnitude


def _chain(case, output: np.ndarray, magnitude: np.ndarray | None, planes: slice | None = None,
           saturated: np.ndarray | None = None) -> None:
    """Apply the post-ops in place to ``output`` (and ``magnitude``, if given); mark in ``saturated``
    (if given) the elements a ReLU/Clamp set to a constant."""
    channel_dims = (1, output.shape[1]) + (1,) * (output.ndim - 2)
    for post_op, tensors in zip(case.post_ops, values(case)):
        if post_op.kind == "batch_norm":
            scale = tensors["scale"].astype(np.float64).reshape(channel_dims)
            output *= scale
            if magnitude is not None:
                magnitude *= np.abs(scale)
        if post_op.kind in ("bias", "batch_norm", "sum"):
            addend = (tensors["shift"].reshape(channel_dims) if post_op.kind != "sum"
                      else tensors["addend"] if planes is None else tensors["addend"][:, :, planes])
            addend = addend.astype(np.float64)
            output += addend
            if magnitude is not None:
                magnitude += np.abs(addend)
        elif post_op.kind in ("relu", "clamp"):
            low, high = (0.0, np.inf) if post_op.kind == "relu" else (post_op.minimum, post_op.maximum)
            if saturated is not None:
                saturated |= (output < low) | (output > high) | (low == high)
            np.clip(output, low, high, out=output)


def magnitude_bound(case, bound: float) -> float:
    """An a-priori bound on the post-op magnitude from one on the op's (the streamed path)."""
    for post_op, tensors in zip(case.post_ops, values(case)):
        bound = bound * (float(np.max(np.abs(tensors["scale"]))) if "scale" in tensors else 1.0)
        for part in ("shift", "addend"):
            if part in tensors:
                bound += float(np.max(np.abs(tensors[part])))
    return bound


def saturated_fraction(case, op_output: np.ndarray) -> float:
    """The fraction of output elements a ReLU/Clamp set to a constant (whatever the op computed)."""
    if not any(post_op.kind in ("relu", "clamp") for post_op in case.post_ops) or op_output.size == 0:
        return 0.0
    saturated = np.zeros(op_output.shape, dtype=bool)
    _chain(case, np.array(op_output, dtype=np.float64), None, saturated=saturated)
    return float(np.count_nonzero(saturated)) / saturated.size


def trust_problem(case, op_output: np.ndarray) -> str | None:
    """Why the post-ops hide the op's output from the comparison (ReLU/Clamp saturate almost all)."""
    fraction = saturated_fraction(case, op_output)
    if fraction > MAX_SATURATED_FRACTION:
        return (f"untrustworthy reference: the post-ops ({','.join(p.label() for p in case.post_ops)}) saturate "
                f"{100 * fraction:.3g}% of the outputs to a constant (over {100 * MAX_SATURATED_FRACTION:g}%), "
                f"which a device computing the op wrong would also match; widen the clamp or change the bias")
    return None


# --- the tolerance ---------------------------------------------------------------------------

@dataclass(frozen=True)
class ToleranceTerms:
    """What the post-ops add to the bound (README "Tolerances", compare.tolerance_for)."""

    arithmetic: int                   # Add/Multiply layers: one more rounding of every term each
    intermediate: int                 # post-op layers run as their own node: their input was rounded
    arrays: tuple[np.ndarray, ...]    # the post-ops' values (for the inputs-exact and integer checks)


def tolerance_terms(case, fusion: dict | None) -> ToleranceTerms:
    """``case``'s post-op terms of the bound; ``fusion`` is ``fusion_record``'s (what ran separately)."""
    if not case.post_ops:
        return ToleranceTerms(0, 0, ())
    arithmetic = sum(len(post_op.layers(0)) for post_op in case.post_ops if post_op.kind != "relu"
                     and post_op.kind != "clamp")
    arrays = [array for tensors in values(case) for array in tensors.values()]
    arrays += [np.array([post_op.minimum, post_op.maximum]) for post_op in case.post_ops if post_op.kind == "clamp"]
    separate = len((fusion or {}).get("not_fused_layers", ())) if fusion is not None else sum(
        len(post_op.layers(0)) for post_op in case.post_ops)
    return ToleranceTerms(arithmetic, separate, tuple(arrays))


# --- fusion, read from the runtime model ---------------------------------------------------

def fusion_record(case, extra: dict) -> dict | None:
    """``{ops, fused, not_fused, folded}`` for ``case``'s post-ops from what the runtime recorded
    (``runtime.fusion``, for a solo run and for each member of a batch alike: ``fused_layers``, the
    IR layers the op's node executes too, and ``separate_layers``, those other computing nodes
    execute, named as in the case's own IR). A post-op is fused when all its
    layers are in the op's node or were folded away (the plugin's transformations merged a
    Multiply/Add into the op's weights or bias: no runtime node executes it); ``folded`` lists those."""
    if not case.post_ops:
        return None
    fused_layers, separate = set(extra.get("fused_layers", ())), set(extra.get("separate_layers", ()))
    record = {"ops": [], "fused": [], "not_fused": [], "folded": [], "not_fused_layers": []}
    for index, post_op in enumerate(case.post_ops):
        layers = post_op.layers(index)
        label = post_op.label()
        record["ops"].append(label)
        apart = [layer for layer in layers if layer in separate]
        record["not_fused_layers"] += apart
        record["not_fused" if apart else "fused"].append(label)
        if not apart and not all(layer in fused_layers for layer in layers):
            record["folded"].append(label)
    return record


def fusion_line(record: dict | None) -> str | None:
    """The failure message's line: which post-ops the plugin fused into the op's primitive."""
    if not record:
        return None
    folded = f" (folded into the op's weights/bias: {', '.join(record['folded'])})" if record["folded"] else ""
    return (f"post-ops {', '.join(record['ops'])}: fused into the op's primitive: "
            f"{', '.join(record['fused']) or 'none'}{folded}; run as separate nodes: "
            f"{', '.join(record['not_fused']) or 'none'}")
