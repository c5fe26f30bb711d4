"""The case schema: every field a case file may hold (``SCHEMA``), its parser and what is allowed,
and the fully resolved ``Case`` the fields become.

Adding a field is one ``SCHEMA`` entry (its parser, what is allowed, which styles and ops have it,
whether it may be swept, which fields it requires) plus, for a field every style shares, a ``Case``
attribute of the same name with a default. Which ops have an op-specific field comes from the op
registry (``ops.having_field``).
"""
from __future__ import annotations

import dataclasses
import difflib
import re
from dataclasses import dataclass, replace
from typing import Any, Callable

from . import ops, post_ops, shapes, styles
# IR element types "any numeric type" admits that numpy can hold (f8/i4 cannot be fed from numpy).
from .element_types import ELEMENT_TYPES
from .ops import FieldError
from .yaml_loader import CaseError, _describe_character, _Mapping, _printable, _show

FILLS = ("integers", "uniform")
MARKS = ("slow",)
INFERENCE_PRECISIONS = ("f32", "bf16", "f16")
INPUT_KINDS = ("const", "parameter")
FILE_FIELDS = ("op", "defaults", "cases", "description")
# The harness's limits (README "Limits"): inputs beyond them are refused when the file loads,
# at their line, because the harness could not represent or compute them (the YAML's own:
# yaml_loader.MAX_FILE_BYTES, MAX_NESTING).
INT64_MAX = (1 << 63) - 1         # every integer goes to numpy/torch/OpenVINO as int64
MAX_SWEEP_COMBINATIONS = 4096     # combinations one case entry may sweep (the product of its axis lengths)
MAX_CASES_PER_FILE = 16384        # cases one file may expand to, all entries together
MAX_TOLERANCE_SCALE = 1 << 24     # s * u(f32) = 1: beyond it the bound would accept any output




@dataclass(frozen=True)
class Source:
    """Where a case was written: the YAML file and the line of its entry."""

    path: str
    line: int

    def __str__(self) -> str:
        return f"{self.path}:{self.line}"


@dataclass(frozen=True)
class Case:
    """One fully resolved test case: every attribute explicit, shapes checked."""

    id: str                       # "<file relative to cases root>::<name>[<sweep>]"
    name: str
    op: str
    data_shape: tuple[int, ...]
    kernel_shape: tuple[int, ...]
    strides: tuple[int, ...]
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    dilations: tuple[int, ...]
    auto_pad: str
    output_padding: tuple[int, ...] | None   # BackpropData only
    output_shape: tuple[int, ...] | None     # BackpropData only: the optional 3rd input
    seed: int
    fill: str
    source: Source
    sweep: tuple[tuple[str, Any], ...] = ()
    marks: tuple[str, ...] = ()
    spec_note: str | None = None
    description: str | None = None
    origin: str | None = None                # where the configuration comes from (a model, a bug report)
    style: str = "spec"                      # how the case was written (styles.py)
    # The specs say pads are "positive"/"non-negative"; a case probing what a
    # runtime does with negative pads opts in explicitly (docs/spec-notes.md#sn-negative-pads).
    allow_negative_pads: bool = False
    # Numerics, dynamic shapes, runtime inputs (README "Tolerances" and "Numerics").
    element_type: str = "f32"                 # IR element type of data, kernel and output
    precisions: tuple[str, ...] = ()          # INFERENCE_PRECISION_HINTs this case always runs under
    kernel_input: str = "const"               # "parameter": the kernel is fed at inference time
    output_shape_input: str = "const"         # "parameter": output_shape is fed at inference time
    data_dims: tuple[str, ...] | None = None  # the data Parameter's IR dims when dynamic ("-1", "1..8")
    infer_shapes: tuple[tuple[int, ...], ...] = ()  # concrete data shapes inferred in sequence
    fill_range: tuple[int, int] | None = None  # integer fill range (inclusive), default per element type
    tolerance_scale: float = 1.0              # per-case override of the bound, only with a reason
    tolerance_reason: str | None = None
    sparse_output_reason: str | None = None   # why a mostly-zero reference is still worth comparing
    post_ops: tuple = ()                      # post_ops.PostOp after the op (bias, batch_norm, relu, ...)

    @property
    def dynamic(self) -> bool:
        """True when the data Parameter has dynamic dims and ``infer_shapes`` is a sequence."""
        return self.data_dims is not None

    def at_data_shape(self, data_shape: tuple[int, ...]) -> "Case":
        """This case with concrete ``data_shape`` (one step of a dynamic-shape sequence)."""
        return replace(self, data_shape=tuple(data_shape))

    @property
    def kinds(self) -> tuple[str, ...]:
        """Report groups this case belongs to, e.g. ``element_type=f16``, ``dynamic``."""
        kinds = []
        if self.element_type != "f32":
            kinds.append(f"element_type={self.element_type}")
        if self.dynamic:
            kinds.append("dynamic")
        if self.kernel_input == "parameter":
            kinds.append("runtime_weights")
        if self.output_shape_input == "parameter":
            kinds.append("runtime_output_shape")
        if self.post_ops:
            kinds.append("post_ops")
        return tuple(kinds)

    @property
    def spatial_rank(self) -> int:
        return len(self.data_shape) - 2

    def geometry(self) -> shapes.Geometry:
        """Groups, effective pads and output shape as the spec defines them."""
        return ops.get(self.op).geometry(self)

    def attributes(self) -> dict[str, str]:
        """The op's IR ``<data>`` attributes, as OpenVINO's IR writes them."""
        return ops.get(self.op).attributes(self)


# --- the schema: one entry per field -----------------------------------------

def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


_SPACED = re.compile(r"^\s*-?\d+(\s+-?\d+)+\s*$")


def _comma_hint(value) -> str:
    """MATLAB's ``[1 2 3]`` reads in YAML as one string: say how to write it."""
    items = value if isinstance(value, list) else [value]
    if any(isinstance(item, str) and _SPACED.match(item) for item in items):
        return " (YAML lists need commas: write [1, 2, 3], not [1 2 3])"
    return ""


def _fits_int64(values) -> None:
    """Refuse integers numpy, torch and OpenVINO cannot hold (they all take int64)."""
    for value in values:
        if _is_int(value) and not -INT64_MAX - 1 <= value <= INT64_MAX:
            raise FieldError("", f"{_show(value)} does not fit a signed 64-bit integer (|value| < 2^63), "
                                 f"the harness's limit (README 'Limits')")


def _shape(value):
    if not isinstance(value, list) or not value or not all(_is_int(v) for v in value):
        raise FieldError("", f"expected a list of integers, got {_show(value)}{_comma_hint(value)}")
    _fits_int64(value)
    if any(v < 1 for v in value):
        raise FieldError("", f"every dimension must be >= 1, got {_show(value)}")
    return tuple(value)


_DIM_RANGE = re.compile(r"^(\d+)\.\.(\d+)$")


def _data_dims(value):
    """The data shape; dims may be dynamic (-1, or "low..high") when infer_shapes lists concrete shapes."""
    if not isinstance(value, list) or not any(dim == -1 or isinstance(dim, str) for dim in value):
        return _shape(value)
    if not all(_is_int(dim) or isinstance(dim, str) for dim in value):
        raise FieldError("", f"expected a list of integers, got {_show(value)}")
    _fits_int64(value)
    for dim in value:
        if _is_int(dim) and (dim >= 1 or dim == -1):
            continue
        match = _DIM_RANGE.match(dim) if isinstance(dim, str) else None
        if not match or not 1 <= int(match.group(1)) <= int(match.group(2)) <= INT64_MAX:
            raise FieldError("", f"every dimension must be >= 1, or dynamic: -1 or 'low..high' "
                                 f"(1 <= low <= high), got {_show(value)}")
    return tuple(value)


def _dynamic(dim) -> bool:
    return dim == -1 or isinstance(dim, str)


def _shapes(value):
    if not isinstance(value, list) or not value:
        raise FieldError("", f"expected a non-empty list of shapes, got {_show(value)}")
    return tuple(_shape(shape) for shape in value)


def _choices(options):
    def parse(value):
        if not isinstance(value, list) or not all(isinstance(v, str) and v in options for v in value):
            raise FieldError("", f"expected a list of {', '.join(options)}, got {_show(value)}")
        return tuple(dict.fromkeys(value))
    return parse


def _int_range(value):
    if not isinstance(value, list) or len(value) != 2 or not all(_is_int(v) for v in value) or value[0] > value[1]:
        raise FieldError("", f"expected [low, high] integers with low <= high, got {_show(value)}")
    _fits_int64(value)
    return tuple(value)


def _override(value):
    if (not isinstance(value, dict) or set(value) != {"scale", "reason"} or isinstance(value["scale"], bool)
            or not isinstance(value["scale"], (int, float)) or not 1 <= value["scale"] <= MAX_TOLERANCE_SCALE
            or not isinstance(value["reason"], str) or not value["reason"].strip()):
        # 1 <= scale is False for NaN too: an infinite or NaN scale would let any output pass.
        raise FieldError("", f"got {_show(value)}")
    return float(value["scale"]), value["reason"].strip()


def _reason(value):
    if not isinstance(value, str) or not value.strip():
        raise FieldError("", f"expected the reason, in words, got {_show(value)}")
    return value.strip()


def _ints(minimum: int | None) -> Callable[[Any], Any]:
    """An integer (applies to every axis) or a list of integers, each >= ``minimum``."""
    def parse(value):
        items = value if isinstance(value, list) else [value]
        if (not isinstance(value, list) and not _is_int(value)) or not all(_is_int(v) for v in items) or not items:
            raise FieldError("", f"expected an integer or a list of integers, got {_show(value)}{_comma_hint(value)}")
        _fits_int64(items)
        if minimum is not None and any(v < minimum for v in items):
            raise FieldError("", f"values must be >= {minimum}, got {_show(value)}")
        return tuple(value) if isinstance(value, list) else value
    return parse


def _int(minimum: int) -> Callable[[Any], int]:
    def parse(value):
        if not _is_int(value):
            raise FieldError("", f"expected an integer, got {_show(value)}")
        _fits_int64([value])
        if value < minimum:
            raise FieldError("", f"must be >= {minimum}, got {value}")
        return value
    return parse


def _choice(options, *, also: Callable[[Any], Any] | None = None) -> Callable[[Any], Any]:
    """One of ``options`` (strings), or else whatever ``also`` accepts."""
    def parse(value):
        if isinstance(value, str) and value in options:
            return value
        if also is not None and not isinstance(value, str):
            return also(value)
        raise FieldError("", f"unknown value {_show(value)}")
    return parse


def _text(value):
    if not isinstance(value, str):
        raise FieldError("", f"expected text, got {_show(value)}")
    return value


def _boolean(value):
    if not isinstance(value, bool):
        raise FieldError("", f"expected true or false, got {_show(value)}")
    return value


def _marks(value):
    if not isinstance(value, list) or not all(isinstance(m, str) and m in MARKS for m in value):
        raise FieldError("", f"expected a list of marks, got {_show(value)}")
    return tuple(value)


def _zero_only(value):
    if value != 0 or isinstance(value, bool):
        raise FieldError("", f"{_show(value)} cannot be expressed: GroupConvolution pads with zeros only")
    return value


def _zeros_mode(value):
    if value != "zeros":
        raise FieldError("", f"{_show(value)} cannot be expressed: these ops pad with zeros only")
    return value


ALL = styles.STYLES
SPEC, PYTORCH, MATLAB = ("spec",), ("pytorch",), ("matlab",)
BACKPROP = ops.having_field("output_padding")
AXES = "one integer for every spatial axis, or a list with one per axis"


@dataclass(frozen=True)
class Field:
    """One case field: how to parse it, what is allowed, where it may appear."""

    parse: Callable[[Any], Any]       # value -> normalized value; raises FieldError(message)
    allowed: str                      # said in every error about the field
    styles: tuple[str, ...] = ALL     # styles whose vocabulary has it
    ops: tuple[str, ...] = ops.names()
    sweepable: bool = True
    requires: tuple[str, ...] = ()    # fields that must be given with it (e.g. a reason)


SCHEMA: dict[str, Field] = {
    # spec style: the op's own inputs and attributes
    "data": Field(_data_dims, "the data shape [N, GROUPS*C_IN, spatial...], rank 3-5; dims other than "
                              "channels may be dynamic (-1 or 'low..high') with infer_shapes", SPEC),
    "kernel": Field(_shape, "the kernel shape in the spec layout, rank = data rank + 1: GroupConvolution "
                            "[GROUPS, C_OUT, C_IN, k...], BackpropData [GROUPS, C_IN, C_OUT, k...]", SPEC),
    "strides": Field(_ints(1), f"integers >= 1: {AXES}", SPEC),
    "dilations": Field(_ints(1), f"integers >= 1: {AXES}", SPEC),
    "pads_begin": Field(_ints(None), f"integers >= 0 (< 0 with allow_negative_pads: true): {AXES}", SPEC),
    "pads_end": Field(_ints(None), f"integers >= 0 (< 0 with allow_negative_pads: true): {AXES}", SPEC),
    "auto_pad": Field(_choice(shapes.AUTO_PADS), ", ".join(shapes.AUTO_PADS), SPEC),
    "output_padding": Field(_ints(0), f"integers >= 0: {AXES}",
                            SPEC + PYTORCH, BACKPROP),
    "output_shape": Field(_ints(1), "the output's spatial sizes, integers >= 1, one per spatial axis",
                          SPEC, BACKPROP),
    # PyTorch style: nn.Conv{1,2,3}d / nn.ConvTranspose{1,2,3}d
    "input_shape": Field(_shape, "the input tensor shape [N, C, spatial...], rank 3-5", PYTORCH),
    "in_channels": Field(_int(1), "a positive integer, divisible by groups", PYTORCH),
    "out_channels": Field(_int(1), "a positive integer, divisible by groups", PYTORCH),
    "groups": Field(_int(1), "a positive integer dividing in_channels and out_channels", PYTORCH),
    "kernel_size": Field(_ints(1), f"integers >= 1: {AXES}", PYTORCH),
    "stride": Field(_ints(1), f"integers >= 1: {AXES}", PYTORCH),
    "dilation": Field(_ints(1), f"integers >= 1: {AXES}", PYTORCH),
    "padding": Field(_choice(("same", "valid"), also=_ints(0)),
                     f"same, valid (Conv only), or integers >= 0: {AXES}", PYTORCH),
    "padding_mode": Field(_zeros_mode, "zeros", PYTORCH),
    # MATLAB style: groupedConvolution2dLayer (2D GroupConvolution)
    "InputSize": Field(_shape, "[H W C] as in imageInputLayer (three positive integers)", MATLAB),
    "BatchSize": Field(_int(1), "a positive integer (default 1)", MATLAB),
    "FilterSize": Field(_ints(1), "a positive integer or [h w]", MATLAB),
    "NumFiltersPerGroup": Field(_int(1), "a positive integer", MATLAB),
    "NumGroups": Field(_choice(("channelwise",), also=_int(1)),
                       "a positive integer dividing the input channels, or channelwise", MATLAB),
    "Stride": Field(_ints(1), "a positive integer or [a b]", MATLAB),
    "DilationFactor": Field(_ints(1), "a positive integer or [h w]", MATLAB),
    "Padding": Field(_choice(("same",), also=_ints(0)),
                     "a non-negative integer p, [a b] (top/bottom, left/right), [t b l r], or same", MATLAB),
    "PaddingValue": Field(_zero_only, "0 (the only padding these ops express)", MATLAB),
    # every style
    "style": Field(_choice(styles.STYLES), ", ".join(styles.STYLES) + " (default spec)", sweepable=False),
    "fill": Field(_choice(FILLS), ", ".join(FILLS)),
    "seed": Field(_int(0), "a non-negative integer (default: a hash of the case id)"),
    "marks": Field(_marks, "a list of: " + ", ".join(MARKS)),
    "spec_note": Field(_text, "text: the docs/spec-notes.md id this case illustrates", sweepable=False),
    "description": Field(_text, "text", sweepable=False),
    "origin": Field(_text, "text: where this configuration comes from, precisely (a model's source file and "
                           "layer, an issue or PR with its repository)", sweepable=False),
    "allow_negative_pads": Field(_boolean, "true or false: the case probes negative pads on purpose"),
    # numerics, dynamic shapes, runtime inputs
    "element_type": Field(_choice(ELEMENT_TYPES), "the IR element type: " + ", ".join(ELEMENT_TYPES)),
    "precisions": Field(_choices(INFERENCE_PRECISIONS), "a list of INFERENCE_PRECISION_HINTs this case "
                                                        "always runs under: " + ", ".join(INFERENCE_PRECISIONS)),
    "kernel_input": Field(_choice(INPUT_KINDS), "const (default) or parameter (fed at inference time)"),
    "output_shape_input": Field(_choice(INPUT_KINDS), "const (default) or parameter (fed at inference time); "
                                                      "needs output_shape",
                                ops=ops.having_field("output_shape_input")),
    "infer_shapes": Field(_shapes, "the concrete data shapes inferred in sequence on one compiled model "
                                   "(needs dynamic dims in data)", sweepable=False),
    "fill_range": Field(_int_range, "[low, high]: the integer fill's inclusive range (fill: integers)"),
    "tolerance": Field(_override, "a per-case override {scale: <number, 1 <= scale <= 2^24>, "
                                  "reason: <why, in words>}",
                       sweepable=False),
    "allow_sparse_output": Field(_reason, "the reason, in words, why a mostly-zero reference output is "
                                          "still worth comparing", sweepable=False),
    "post_ops": Field(post_ops.parse, post_ops.ALLOWED, sweepable=False),
}

# Fields every style must give (after defaults and sweeps are merged).
REQUIRED = {
    "spec": ("data", "kernel"),
    "pytorch": ("input_shape", "in_channels", "out_channels", "kernel_size"),
    "matlab": ("InputSize", "FilterSize", "NumFiltersPerGroup", "NumGroups"),
}
ENTRY_ONLY = ("name", "sweep")


_CASE_ATTRIBUTES = {attribute.name for attribute in dataclasses.fields(Case)}


def fields_for(style: str, op: str) -> list[str]:
    """The field names a case of ``op`` written in ``style`` may use."""
    return [name for name, spec in SCHEMA.items() if style in spec.styles and op in spec.ops]



def _unknown_key(key: str, style: str, op: str, allowed) -> str:
    """"unknown field" plus the best hint: a close name, or the style/op that has it."""
    spec = SCHEMA.get(key)
    if spec is not None and style in spec.styles and op not in spec.ops:
        return f"only {' and '.join(spec.ops)} {'has' if len(spec.ops) == 1 else 'have'} this field, not {op}"
    close = difflib.get_close_matches(key, allowed, n=1) or difflib.get_close_matches(
        key.lower(), [name.lower() for name in allowed], n=1)
    if close and close[0] not in allowed:
        close = [name for name in allowed if name.lower() == close[0]]
    hint = f"; did you mean '{close[0]}'?" if close else ""
    foreign = [character for character in dict.fromkeys(key) if not character.isascii()]
    if foreign:  # a look-alike (Cyrillic 'і' for 'i') or an invisible character
        hint += f" (the name holds non-ASCII {', '.join(_describe_character(c) for c in foreign[:3])})"
    if spec is not None and style not in spec.styles:
        hint += f" ('{key}' is a {'/'.join(spec.styles)}-style field: add 'style: {spec.styles[0]}' to write the case that way)"
    return f"unknown field{hint} (allowed: {', '.join(sorted(allowed))})"


def _check_keys(path: str, mapping: _Mapping, allowed, style: str, op: str, prefix: str = "") -> list[CaseError]:
    return [CaseError(path, mapping.key_lines.get(key, mapping.line), f"{prefix}{_printable(key)}",
                      _unknown_key(str(key), style, op, allowed))
            for key in mapping if key not in allowed]


