"""Stage 1: case YAML -> fully resolved ``Case`` dataclasses.

A case file names an op, optional ``defaults`` and a list of ``cases``; each
case may carry a ``sweep`` block whose cartesian product becomes one ``Case``
per combination. Everything is checked here, before anything runs, and every
problem is a ``CaseError`` that names ``file:line: field: what is wrong``.

Checking goes in three steps for every expanded combination:

1. each field's value against its entry in ``SCHEMA`` (type, range);
2. the style translation (``styles.py``: PyTorch/MATLAB fields -> spec fields);
3. the relations between spec fields (ranks, channels, output_padding, output
   size, memory budget).

All cases of a file are checked; ``load_cases_text`` raises one
``CaseFileErrors`` listing every problem (``.errors``), so ``validate`` shows
them all and the pytest plugin shows them in one failed item.

Adding a field is one ``SCHEMA`` entry (its parser, what is allowed, which
styles and ops have it, whether it may be swept, which fields it requires) plus,
for a field every style shares, a ``Case`` attribute of the same name with a
default: it is passed through as parsed. Spec-style shape/attribute fields are
resolved in ``_relations``; PyTorch/MATLAB fields are translated in ``styles.py``.
"""
from __future__ import annotations

import dataclasses
import difflib
import itertools
import re
import reprlib
import unicodedata
import zlib
from dataclasses import dataclass, field, replace
from math import prod
from pathlib import Path
from typing import Any, Callable, Iterator

import yaml

from . import ops, shapes, styles
# IR element types "any numeric type" admits that numpy can hold (f8/i4 cannot be fed from numpy).
from .element_types import ELEMENT_TYPES
from .ops import FieldError

FILLS = ("integers", "uniform")
MARKS = ("slow",)
INFERENCE_PRECISIONS = ("f32", "bf16", "f16")
INPUT_KINDS = ("const", "parameter")
FILE_FIELDS = ("op", "defaults", "cases", "description")
GIB = 1 << 30
# The harness's limits (README "Limits"): inputs beyond them are refused when the file loads,
# at their line, because the harness could not represent or compute them.
MAX_FILE_BYTES = 1 << 20          # a case file is text a person writes: 1 MiB is ~20,000 lines
MAX_NESTING = 16                  # YAML depth: a case file needs 6 (file, cases, entry, sweep, list, list)
INT64_MAX = (1 << 63) - 1         # every integer goes to numpy/torch/OpenVINO as int64
INT32_MAX = (1 << 31) - 1         # torch's transposed convolution reads dilations as int32
MAX_SWEEP_COMBINATIONS = 4096     # combinations one case entry may sweep (the product of its axis lengths)
MAX_CASES_PER_FILE = 16384        # cases one file may expand to, all entries together
MAX_TOLERANCE_SCALE = 1 << 24     # s * u(f32) = 1: beyond it the bound would accept any output
DEFAULT_MEMORY_BUDGET = 16 * GIB  # the spec's full-size examples (224^3 3D) fit; a typo'd 10^6 does not


class CaseError(Exception):
    """A problem in a case file, located at ``path:line`` and naming the field."""

    def __init__(self, path: Path | str, line: int | None, field_name: str | None, message: str):
        self.path, self.line, self.field, self.message = printable_path(path), line, field_name, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


def printable_path(path: Path | str) -> str:
    """``path`` as text any report can hold: bytes that are not UTF-8 (which Python keeps as lone
    surrogates) as ``\\xff``, invisible and control characters as escapes (``\\u202e``)."""
    text = str(path).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    return "".join(c if c.isprintable() else ascii(c)[1:-1] for c in text)


class CaseFileErrors(CaseError):
    """Every problem found in one case file; located (path/line/field) at the first."""

    def __init__(self, errors: list[CaseError]):
        self.errors = list(errors)
        first = self.errors[0]
        super().__init__(first.path, first.line, first.field, first.message)

    def __str__(self) -> str:
        return "\n".join(CaseError.__str__(error) for error in self.errors)


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


# --- memory ------------------------------------------------------------------------

# Above this many output elements the oracle is computed and compared in slabs of
# output planes (oracle.reference_slabs + compare.StreamingComparison) instead of
# whole: 32M elements = 512 MB of float64 output + magnitude.
STREAM_THRESHOLD_ELEMENTS = 1 << 25
SLAB_ELEMENTS = 1 << 24   # output elements per slab (~128 MB per float64 array)


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
        planes = max(1, SLAB_ELEMENTS // max(1, output // depth))
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


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_size(text: str | int) -> int:
    """``'16GiB'``, ``'512MB'``, ``'1000'`` or an int -> bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 16GiB, 512MiB, 2GB, 1000000)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


def format_size(size: int) -> str:
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"


# --- YAML with line numbers --------------------------------------------------

class _Mapping(dict):
    """A dict that remembers the line of itself and of each key (and each value)."""

    line: int = 0
    key_lines: dict
    value_lines: dict


class _Sequence(list):
    """A list that remembers its line and the line of each item."""

    line: int = 0
    item_lines: list


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no object tags) that keeps line numbers and rejects duplicate keys.

    Aliases (``*name``) are refused: an alias bomb is a few lines of YAML, and
    ``defaults:`` already shares values between cases.
    """

    def __init__(self, stream, path):
        super().__init__(stream)
        self.path = path
        self.depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise CaseError(self.path, event.start_mark.line + 1, None,
                            f"YAML alias *{_printable(event.anchor)} is not allowed (use 'defaults:' to share values)")
        if self.depth >= MAX_NESTING:
            event = self.peek_event()
            raise CaseError(self.path, event.start_mark.line + 1, None,
                            f"YAML nested more than {MAX_NESTING} levels deep; a case file needs at most 6 "
                            f"(the harness's limit, README 'Limits')")
        self.depth += 1
        try:
            return super().compose_node(parent, index)
        finally:
            self.depth -= 1

    def construct_object(self, node, deep=False):
        try:
            return super().construct_object(node, deep)
        except (CaseError, yaml.YAMLError, RecursionError):
            raise
        except (ValueError, TypeError, LookupError, AttributeError, ArithmeticError) as error:
            # An explicit tag on a value it does not fit (!!int abc, !!bool maybe, !!seq {a: 1}).
            what = _show(node.value) if isinstance(node, yaml.ScalarNode) else f"this {node.id}"
            raise _TextError(self.path, node.start_mark.line + 1, None,
                             f"cannot read {what} as {node.tag} ({type(error).__name__}: {_show(str(error))}); "
                             f"write plain values, without tags") from None


# Characters refused anywhere in a case file, with why. YAML itself allows only printable
# characters (no C0/C1 controls but tab and line breaks, no surrogates, no U+FFFE/U+FFFF);
# the harness also refuses the Unicode line separators (editors do not count them as lines,
# so every line number after one would be wrong) and the BiDi controls, which make text display
# in another order than it is read (a comment can hide a field: "Trojan Source", CVE-2021-42574).
_NOT_IN_FILE = re.compile("[^\t\n\r\x20-\x7e\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]"
                          "|[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029]")
# Characters refused in any string value (they arrive through escapes such as "\0" or "\ud800"):
# controls other than tab and newline, surrogates (not encodable as UTF-8), U+FFFE/U+FFFF (not XML),
# and the BiDi controls and line separators as above.
_NOT_IN_TEXT = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff"
                          "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c\u2028\u2029]")


def _describe_character(character: str) -> str:
    """``U+000C FORM FEED``: a character named so that the message itself stays printable."""
    code = ord(character)
    name = unicodedata.name(character, "") or {0: "NULL", 9: "TAB", 10: "LINE FEED", 12: "FORM FEED",
                                               13: "CARRIAGE RETURN", 0x85: "NEXT LINE"}.get(code, "")
    if not name and 0xD800 <= code <= 0xDFFF:
        name = "a lone surrogate, not a character"
    elif not name:
        name = {"Cc": "a control character", "Co": "a private-use character"}.get(
            unicodedata.category(character), "not a character")
    return f"U+{code:04X} ({name})"


def _printable(text) -> str:
    """``text`` as it can be shown in a message: escaped (like repr) when it holds anything invisible,
    and cut short when long."""
    text = str(text)
    if len(text) > 60:
        return _show(text)
    return text if text.isprintable() and text.strip() == text and text else ascii(text)


class _TextError(CaseError):
    """A scalar a case file may not contain (a string with a refused character, an integer of
    hundreds of digits), located at the scalar; the mapping above it names the field."""


def _construct_text(loader: _Loader, node: yaml.ScalarNode) -> str:
    value = loader.construct_scalar(node)
    bad = _NOT_IN_TEXT.search(value)
    if bad:
        raise _TextError(loader.path, node.start_mark.line + 1, None,
                        f"text {_show(value)} holds {_describe_character(bad.group())} at position {bad.start()}: "
                        f"control characters, surrogates, BiDi controls and line separators are not allowed "
                        f"in a case file")
    return value


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    mapping.value_lines = {}
    for key_node, value_node in node.value:
        if key_node.tag == "tag:yaml.org,2002:merge":
            raise CaseError(loader.path, key_node.start_mark.line + 1, None,
                            "YAML merge keys (<<) are not allowed (use 'defaults:' to share values)")
        key = loader.construct_object(key_node, deep=True)
        key_line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise CaseError(loader.path, key_line, None, f"mapping key {_show(key)} is not a plain name")
        if key in mapping:
            raise CaseError(loader.path, key_line, _printable(key),
                            f"duplicate key (first given on line {mapping.key_lines[key]})")
        try:
            mapping[key] = loader.construct_object(value_node, deep=True)
        except _TextError as error:
            # A refused string names the innermost key it is under (sweep.<field> in a sweep).
            if error.field is None:
                error.field = _printable(key)
            elif key in ("sweep", "tolerance") and not error.field.startswith(f"{key}."):
                error.field = f"{key}.{error.field}"
            raise
        mapping.key_lines[key] = key_line
        mapping.value_lines[key] = value_node.start_mark.line + 1
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _Sequence:
    sequence = _Sequence(loader.construct_object(child, deep=True) for child in node.value)
    sequence.line = node.start_mark.line + 1
    sequence.item_lines = [child.start_mark.line + 1 for child in node.value]
    return sequence


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)
_Loader.add_constructor("tag:yaml.org,2002:str", _construct_text)


def _construct_int(loader: _Loader, node: yaml.ScalarNode) -> int:
    # int64 needs at most 19 digits: a longer literal is refused before Python converts it (4300
    # digits and more are a ValueError, and any message showing such a number would be one too).
    digits = sum(character.isalnum() for character in node.value)
    if digits > 100:
        raise _TextError(loader.path, node.start_mark.line + 1, None,
                         f"an integer of {digits} digits does not fit a signed 64-bit integer (|value| < 2^63), "
                         f"the harness's limit (README 'Limits')")
    return loader.construct_yaml_int(node)


_Loader.add_constructor("tag:yaml.org,2002:int", _construct_int)


def parse_yaml(text: str, path: Path | str) -> Any:
    """Parse YAML safely; syntax errors become a ``CaseError`` at the offending line."""
    bad = _NOT_IN_FILE.search(text)
    if bad:
        before = text[:bad.start()]
        line = len(re.findall("\r\n|\r|\n", before)) + 1
        column = bad.start() - max(before.rfind("\n"), before.rfind("\r"))
        raise CaseError(path, line, None, f"{_describe_character(bad.group())} at column {column}: a case file may "
                                          f"hold only printable text, tabs and line breaks (README 'Limits')")
    loader = _Loader(text, path)
    try:
        return loader.get_single_data()
    except RecursionError:
        raise CaseError(path, None, None, f"YAML nested too deeply (limit {MAX_NESTING} levels)") from None
    except yaml.constructor.ConstructorError as error:
        mark = error.problem_mark or error.context_mark
        raise CaseError(path, mark.line + 1 if mark else None, None,
                        f"{error.problem}: only plain YAML (mappings, lists, strings, numbers) is allowed, "
                        f"no tags such as !!python/object") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        what = ", ".join(part for part in (error.context, error.problem) if part)
        if error.context_mark is not None and mark is not None and error.context_mark.line != mark.line:
            what += f" (the construct started on line {error.context_mark.line + 1})"
        raise CaseError(path, line, None, f"YAML syntax error: {what}") from None
    except yaml.YAMLError as error:
        raise CaseError(path, None, None, f"YAML error: {_show(str(error))}") from None
    finally:
        loader.dispose()


_repr = reprlib.Repr()
_repr.maxlist = _repr.maxtuple = 8
_repr.maxstring = _repr.maxother = 60
_repr.maxlevel = 3


def _show(value) -> str:
    """A value for an error message, cut short if long or deep."""
    return _repr.repr(value)


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


# --- checking ----------------------------------------------------------------------

@dataclass
class _Entry:
    """A case combination's merged fields, each with its line and how to name it."""

    path: str
    entry_line: int
    values: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)     # "strides" or "sweep.strides"

    def set(self, name, value, line, label=None):
        self.values[name] = value
        self.lines[name] = line
        self.labels[name] = label or name

    def error(self, name: str, message: str) -> CaseError:
        return CaseError(self.path, self.lines.get(name, self.entry_line), self.labels.get(name, name), message)


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


def _relations(entry: _Entry, op: str, spec_values: dict, origin: dict) -> dict:
    """Check and resolve spec fields against each other; errors name the field (or its origin)."""
    def error(name, message):
        return entry.error(origin.get(name, name), message)

    data_shape, kernel_shape = tuple(spec_values["data"]), tuple(spec_values["kernel"])
    if not 3 <= len(data_shape) <= 5:
        raise error("data", f"rank must be 3, 4 or 5 (1D/2D/3D), got {len(data_shape)}: {_show(list(data_shape))}")
    operation = ops.get(op)
    kernel_rank = operation.kernel_rank(len(data_shape))
    if len(kernel_shape) != kernel_rank:
        plus = " + 1" if kernel_rank > len(data_shape) else ""
        raise error("kernel", f"rank must be data rank{plus} = {kernel_rank}, got {len(kernel_shape)}: "
                              f"{_show(list(kernel_shape))}")
    rank = len(data_shape) - 2
    groups, in_per_group, _ = operation.channels(kernel_shape)
    if data_shape[1] != groups * in_per_group:
        what = "GROUPS*C_IN" if operation.grouped else "C_IN"
        raise error("kernel", f"data has {data_shape[1]} channels but kernel {operation.kernel_layout} "
                              f"{list(kernel_shape)} needs {what} = {groups * in_per_group}; the data's channels "
                              f"must be {what}")

    def axes(name, default):
        value = spec_values.get(name, default)
        if isinstance(value, int):
            return (value,) * rank
        if len(value) != rank:
            raise error(name, f"has {len(value)} values but the data has {rank} spatial axes; "
                              f"allowed: one integer, or {rank} values")
        return tuple(value)

    resolved = {"data_shape": data_shape, "kernel_shape": kernel_shape}
    for name, default in (("strides", 1), ("dilations", 1), ("pads_begin", 0), ("pads_end", 0)):
        resolved[name] = axes(name, default)
    if not entry.values.get("allow_negative_pads", False):
        for name in ("pads_begin", "pads_end"):
            if any(pad < 0 for pad in resolved[name]):
                raise error(name, f"negative pads {list(resolved[name])}; allowed: integers >= 0 "
                                  f"(set allow_negative_pads: true to probe negative pads on purpose)")
    resolved["auto_pad"] = spec_values.get("auto_pad", "explicit")
    resolved.update(operation.resolve_fields(spec_values, axes, error, _show))
    return resolved


def _build_case(entry: _Entry, op: str, case_id: str, name: str, sweep, memory_budget: int | None) -> Case:
    """Parse, translate and relate one combination's fields into a ``Case``."""
    parsed: dict[str, Any] = {}
    problems = []
    for key, value in entry.values.items():
        try:
            parsed[key] = SCHEMA[key].parse(value)
        except FieldError as problem:
            problems.append(entry.error(key, f"{problem.message}; allowed: {SCHEMA[key].allowed}"))
    for key in parsed:
        problems += [entry.error(key, f"needs '{needed}' too ({SCHEMA[needed].allowed})")
                     for needed in SCHEMA[key].requires if needed not in parsed]
    if problems:  # every field's own problem; relations are checked once the fields are right
        raise CaseFileErrors(problems)
    style = parsed.get("style", "spec")
    missing = [key for key in REQUIRED[style] if key not in parsed]
    if missing:
        raise entry.error(missing[0], f"is required ({SCHEMA[missing[0]].allowed})")
    # Fields every style shares (fill, seed, marks, ...) are not translated: they stay common.
    style_values = {key: value for key, value in parsed.items()
                    if SCHEMA[key].styles != ALL and style in SCHEMA[key].styles}
    common = {key: value for key, value in parsed.items() if key not in style_values}
    try:
        spec_values = styles.to_spec(style, style_values, op)
    except FieldError as problem:
        raise entry.error(problem.field, problem.message) from None
    # Errors about translated fields point at the field the user wrote.
    origin = {} if style == "spec" else {
        "pytorch": {"data": "input_shape", "kernel": "kernel_size", "strides": "stride", "dilations": "dilation",
                    "pads_begin": "padding", "pads_end": "padding"},
        "matlab": {"data": "InputSize", "kernel": "FilterSize", "strides": "Stride",
                   "dilations": "DilationFactor", "pads_begin": "Padding", "pads_end": "Padding"},
    }[style]
    data_dims, spec_values = _dynamic_data(entry, spec_values, common)
    resolved = _relations(entry, op, spec_values, origin)
    numerics = _numerics(entry, common, resolved)
    seed = common.get("seed", zlib.crc32(case_id.encode()))
    # Any other common field named like a Case attribute goes straight into it (absent: its default).
    passthrough = {key: value for key, value in common.items()
                   if key in _CASE_ATTRIBUTES and key not in ("seed", "fill", "marks", "style", "infer_shapes")
                   and key not in numerics}
    case = Case(
        id=case_id, name=name, op=op, **resolved, seed=seed, fill=common.get("fill", "integers"),
        source=Source(entry.path, entry.entry_line), sweep=sweep, marks=common.get("marks", ()),
        style=style, data_dims=data_dims,
        infer_shapes=tuple(common.get("infer_shapes", ())) if data_dims else (), **numerics, **passthrough)
    _check_representable(entry, case, origin)
    for step in case.infer_shapes or (case.data_shape,):
        out = case.at_data_shape(step).geometry().output_shape
        if any(dim < 1 for dim in out[2:]):
            where = "output_shape" if case.output_shape else origin.get("data", "data")
            where = "infer_shapes" if case.dynamic and not case.output_shape else where
            raise entry.error(where, f"the spec's output shape would be {list(out)}: every spatial size must be "
                                     f">= 1 (enlarge the input or reduce kernel/dilation/pads)")
    # A slow (full-size) case over the budget still loads: the plugin skips it with this
    # message unless the budget is raised, so one such case does not fail its whole file.
    if memory_budget is not None and "slow" not in case.marks:
        needed = footprint_bytes(case)
        if needed > memory_budget:
            culprit = _memory_culprit(case, memory_budget)
            raise entry.error(origin.get(culprit, culprit),
                              f"this case needs about {format_size(needed)} (data {list(case.data_shape)}, "
                              f"kernel {list(case.kernel_shape)}, output {list(out)}), over the memory budget of "
                              f"{format_size(memory_budget)}; allowed: shapes within the budget (raise it with "
                              f"--memory-budget, ini conformance_memory_budget, or memory_budget= in the API)")
    return case


def _check_representable(entry: _Entry, case: Case, origin: dict) -> None:
    """Refuse attribute combinations the harness cannot compute (README "Limits").

    Every size the oracle and the runtime derive per spatial axis (padded input, dilated
    kernel extent, BackpropData's full transposed size, the output) must fit int64; torch's
    transposed convolution reads dilations as 32-bit integers (2^32 + 1 silently becomes 1), so
    BackpropData's must fit int32.
    """
    def error(name, message):
        return entry.error(origin.get(name, name), message)

    op = ops.get(case.op)
    limit = op.oracle_limit(case)
    if limit is not None:
        raise error(*limit)
    for step in case.infer_shapes or (case.data_shape,):
        for axis, (size, k, s, d, pb, pe) in enumerate(zip(
                step[2:], op.kernel_spatial(case.kernel_shape), case.strides, case.dilations,
                case.pads_begin, case.pads_end)):
            for name, value in op.derived_sizes(size, (k - 1) * d + 1, s, pb + pe).items():
                if abs(value) > INT64_MAX:
                    raise error(name, f"axis {axis}: a derived size ({value}) does not fit a signed 64-bit "
                                      f"integer, which the oracle and the runtime compute with (README 'Limits')")


def _memory_culprit(case: Case, budget: int) -> str:
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


def _dynamic_data(entry: _Entry, spec_values: dict, common: dict) -> tuple[tuple[str, ...] | None, dict]:
    """Dynamic data dims: check ``infer_shapes`` against them; the first shape stands for the case."""
    data = spec_values.get("data", ())
    if not any(_dynamic(dim) for dim in data):
        if "infer_shapes" in common:
            raise entry.error("infer_shapes", "needs dynamic dims in data (-1 or 'low..high')")
        return None, spec_values
    if len(data) > 1 and _dynamic(data[1]):
        raise entry.error("data", "the channel dim must be static: the kernel fixes GROUPS*C_IN")
    if "infer_shapes" not in common:
        raise entry.error("infer_shapes", "data has dynamic dims: list the concrete shapes to infer, "
                                          "e.g. infer_shapes: [[1, 4, 8, 8], [2, 4, 5, 7]]")
    for shape in common["infer_shapes"]:
        if len(shape) != len(data):
            raise entry.error("infer_shapes", f"{_show(list(shape))} has rank {len(shape)}, data {len(data)}")
        for axis, (dim, declared) in enumerate(zip(shape, data)):
            low, high = ((1, None) if declared == -1 else tuple(map(int, declared.split(".."))) if isinstance(
                declared, str) else (declared, declared))
            if dim < low or (high is not None and dim > high):
                raise entry.error("infer_shapes", f"{list(shape)}: dim {axis} = {dim} does not fit data's {declared!r}")
    return tuple(str(dim) for dim in data), {**spec_values, "data": common["infer_shapes"][0]}


def _numerics(entry: _Entry, common: dict, resolved: dict) -> dict:
    """Case attributes of element_type, precisions, runtime inputs, fill_range and overrides, cross-checked."""
    element_type = common.get("element_type", "f32")
    fill = common.get("fill", "integers")
    if element_type[0] in "iu" and fill != "integers":
        raise entry.error("fill", f"element_type {element_type} needs fill: integers")
    if "fill_range" in common and fill != "integers":
        raise entry.error("fill_range", "only applies to fill: integers")
    if common.get("output_shape_input") == "parameter" and resolved.get("output_shape") is None:
        raise entry.error("output_shape_input", "needs output_shape (BackpropData's optional third input)")
    scale, reason = common.get("tolerance", (1.0, None))
    return {"element_type": element_type, "precisions": common.get("precisions", ()),
            "kernel_input": common.get("kernel_input", "const"),
            "output_shape_input": common.get("output_shape_input", "const"),
            "fill_range": common.get("fill_range"), "tolerance_scale": scale, "tolerance_reason": reason,
            "sparse_output_reason": common.get("allow_sparse_output")}


def _format_value(value) -> str:
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


_NAME = re.compile(r"^[^\s\[\]:/]+$")


def _expand(path: str, op: str, defaults: _Mapping, raw: _Mapping, file_id: str,
            memory_budget: int | None, errors: list[CaseError]) -> Iterator[Case]:
    """The cases of one entry (one per sweep combination); problems go to ``errors``."""
    style = raw.get("style", defaults.get("style", "spec"))
    if style not in styles.STYLES:
        mapping = raw if "style" in raw else defaults
        errors.append(CaseError(path, mapping.key_lines["style"], "style",
                                f"{_show(style)} is not one of {', '.join(styles.STYLES)}"))
        return
    allowed = fields_for(style, op)
    # Unknown keys are reported and skipped; the known fields are still checked.
    errors.extend(_check_keys(path, raw, allowed + list(ENTRY_ONLY), style, op))
    problems: list[CaseError] = []
    name = raw.get("name")
    invisible = next((c for c in name if unicodedata.category(c)[0] in "CZ"), None) if isinstance(name, str) else None
    if not isinstance(name, str) or not _NAME.match(name) or invisible:
        hint = f" (it holds the invisible {_describe_character(invisible)})" if invisible else ""
        problems.append(CaseError(path, raw.key_lines.get("name", raw.line), "name",
                                  f"every case needs a name without spaces, '[', ']', ':', '/' or invisible "
                                  f"characters, got {_show(name)}{hint}"))
    sweep = raw.get("sweep")
    if sweep is None:
        sweep = _Mapping(); sweep.line = raw.line; sweep.key_lines = {}; sweep.value_lines = {}
    elif not isinstance(sweep, dict):
        problems.append(CaseError(path, raw.key_lines["sweep"], "sweep",
                                  f"expected a mapping of field: [values...], got {_show(sweep)}"))
        sweep = {}
    else:
        errors.extend(_check_keys(path, sweep, allowed, style, op, prefix="sweep."))
        for key, values in sweep.items():
            if key not in allowed:
                continue
            if not SCHEMA[key].sweepable:
                problems.append(CaseError(path, sweep.key_lines[key], f"sweep.{key}", "cannot be swept"))
            elif not isinstance(values, list) or not values:
                problems.append(CaseError(path, sweep.key_lines[key], f"sweep.{key}",
                                          f"expected a non-empty list of values to sweep over, got {_show(values)}"))
    keys = [key for key in sweep if key in allowed]
    combinations = prod(len(sweep[key]) for key in keys) if not problems else 0
    if combinations > MAX_SWEEP_COMBINATIONS:
        sizes = " x ".join(f"{len(sweep[key])} {key}" for key in keys)
        problems.append(CaseError(path, raw.key_lines["sweep"], "sweep",
                                  f"{combinations} combinations ({sizes}), over the limit of "
                                  f"{MAX_SWEEP_COMBINATIONS} per case entry (README 'Limits'); split the entry "
                                  f"or sweep fewer values"))
    if problems:
        errors.extend(problems)
        return
    for indices in itertools.product(*(range(len(sweep[k])) for k in keys)):
        entry = _Entry(path=path, entry_line=raw.line)
        for source in (defaults, raw):
            for key, value in source.items():
                if key in allowed:  # unknown keys were reported already
                    entry.set(key, value, source.value_lines.get(key, source.line))
        swept = []
        for key, index in zip(keys, indices):
            values = sweep[key]
            entry.set(key, values[index], values.item_lines[index], f"sweep.{key}")
            swept.append((key, values[index]))
        suffix = "-".join(f"{k}={_format_value(v)}" for k, v in swept)
        case_id = f"{file_id}::{name}" + (f"[{suffix}]" if suffix else "")
        try:
            yield _build_case(entry, op, case_id, name, tuple(swept), memory_budget)
        except CaseFileErrors as problems:
            errors.extend(problems.errors)
        except CaseError as error:
            errors.append(error)


def load_cases_text(text: str, path: Path | str = "<text>", file_id: str | None = None, *,
                    memory_budget: int | str | None = DEFAULT_MEMORY_BUDGET) -> list[Case]:
    """Parse one case file's text into resolved cases.

    Every case is checked; if any has a problem, raises ``CaseFileErrors``
    listing all of them. ``memory_budget`` (bytes, or e.g. ``"16GiB"``; ``None``
    = unlimited) refuses cases whose ``footprint_bytes`` exceed it. Bad input
    never raises anything but a ``CaseError``: an unexpected exception while
    loading (a harness bug) becomes one naming the file.
    """
    path = str(path)
    budget = parse_size(memory_budget) if memory_budget is not None else None
    try:
        return _load_text(text, path, file_id, budget)
    except CaseError:
        raise
    except RecursionError:
        raise CaseError(path, None, None, "nested too deeply to load (README 'Limits')") from None
    except Exception as error:  # noqa: BLE001 - the promise: a bad file is an item, never a traceback
        raise CaseError(path, None, None, f"could not be loaded: unexpected {type(error).__name__}: "
                                          f"{_show(str(error))} (a harness bug: please report it with this file)"
                        ) from error


def _load_text(text: str, path: str, file_id: str | None, budget: int | None) -> list[Case]:
    """``load_cases_text`` without its last-resort handler."""
    if len(text) > MAX_FILE_BYTES:
        raise CaseError(path, None, None, f"{len(text)} characters: a case file may be at most "
                                          f"{format_size(MAX_FILE_BYTES)} (README 'Limits'); split it")
    document = parse_yaml(text, path)
    if document is None:
        raise CaseError(path, 1, None, "the file is empty: expected 'op:' and 'cases:'")
    if not isinstance(document, dict):
        raise CaseError(path, getattr(document, "line", 1), None,
                        f"expected a mapping with 'op:' and 'cases:' at the top level, got {_show(document)}")
    op = document.get("op")
    errors = [CaseError(path, document.key_lines[key], _printable(key),
                        "is a case field: put it in a case under 'cases:' or under 'defaults:'" if key in SCHEMA
                        else _unknown_key(str(key), "spec", "", FILE_FIELDS))
              for key in document if key not in FILE_FIELDS]
    if op is None:
        errors.append(CaseError(path, document.line, "op", f"is required (allowed: {', '.join(ops.names())})"))
    elif op not in ops.names():
        close = difflib.get_close_matches(str(op), ops.names(), n=1)
        hint = f"; did you mean '{close[0]}'?" if close else ""
        errors.append(CaseError(path, document.key_lines.get("op", document.line), "op",
                                f"{_show(op)} is not an op this harness tests{hint} "
                                f"(allowed: {', '.join(ops.names())})"))
    defaults = document.get("defaults")
    if defaults is None:
        defaults = _Mapping(); defaults.line = 1; defaults.key_lines = {}; defaults.value_lines = {}
    elif not isinstance(defaults, dict):
        errors.append(CaseError(path, document.key_lines["defaults"], "defaults",
                                f"expected a mapping of field: value, got {_show(defaults)}"))
        defaults = None
    entries = document.get("cases")
    if not isinstance(entries, list) or not entries:
        errors.append(CaseError(path, document.key_lines.get("cases", document.line), "cases",
                                f"expected a non-empty list of cases, got {_show(entries)}"))
    if errors:
        raise CaseFileErrors(errors)
    style = defaults.get("style", "spec")
    if style in styles.STYLES:
        errors += _check_keys(path, defaults, fields_for(style, op), style, op, prefix="defaults.")
    cases: list[Case] = []
    seen: dict[str, int] = {}
    # Counted before anything is expanded: a file's cases are bounded whatever its entries sweep
    # (an entry over the per-entry limit is refused on its own, unexpanded, and counts nothing).
    planned = 0
    for raw in entries:
        sweep = raw.get("sweep") if isinstance(raw, dict) else None
        combinations = prod(len(values) for values in sweep.values() if isinstance(values, list)) \
            if isinstance(sweep, dict) else 1
        planned += combinations if combinations <= MAX_SWEEP_COMBINATIONS else 0
        if planned > MAX_CASES_PER_FILE:
            raise CaseError(path, raw.line if isinstance(raw, dict) else entries.line, "cases",
                            f"the file would expand to {planned} or more cases by this entry, over the limit of "
                            f"{MAX_CASES_PER_FILE} per file (README 'Limits'); split it into several files")
    for index, raw in enumerate(entries):
        if not isinstance(raw, dict):
            errors.append(CaseError(path, entries.item_lines[index], "cases",
                                    f"every entry must be a mapping with name: and fields, got {_show(raw)}"))
            continue
        for case in _expand(path, op, defaults, raw, file_id or Path(path).name, budget, errors):
            if case.id in seen:
                errors.append(CaseError(path, raw.line, "name",
                                        f"case id {case.id} repeats the one from line {seen[case.id]}"))
                continue
            seen[case.id] = raw.line
            cases.append(case)
    if errors:
        unique = sorted(dict.fromkeys((e.path, e.line, e.field, e.message) for e in errors),
                        key=lambda error: error[1] or 0)
        raise CaseFileErrors([CaseError(*key) for key in unique])
    return cases


def load_case_file(path: Path | str, root: Path | str | None = None, *,
                   memory_budget: int | str | None = DEFAULT_MEMORY_BUDGET) -> list[Case]:
    """Load one case file; ids are relative to ``root`` (the cases tree) when given.

    A file (or a symlink) whose real location is outside ``root`` is refused. Bad input
    never raises anything but a ``CaseError`` (a symlink loop, an unreadable file: located
    at the file).
    """
    try:
        return _load_file(Path(path), root, memory_budget)
    except CaseError:
        raise
    except Exception as error:  # noqa: BLE001 - the promise: a bad file is an item, never a traceback
        raise CaseError(path, None, None, f"could not be loaded: {type(error).__name__}: {_show(str(error))}"
                        ) from error


def _load_file(path: Path, root: Path | str | None, memory_budget) -> list[Case]:
    """``load_case_file`` without its last-resort handler."""
    file_id = path.name
    if root is not None:
        try:
            real = path.resolve()
        except (RuntimeError, OSError):   # Python 3.11: RuntimeError("Symlink loop from ...")
            raise CaseError(path, None, None, "cannot read: a symlink loop (it never reaches a file)") from None
        try:
            file_id = real.relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            what = "is a symlink to a file outside" if path.is_symlink() else "is outside"
            raise CaseError(path, None, None, f"{what} the cases tree {root}; case files must stay inside it") from None
    if printable_path(file_id) != file_id or _NOT_IN_TEXT.search(file_id):
        raise CaseError(path, None, None, "the file's name is not printable UTF-8 text (it is part of every test id "
                                          "and report row); rename the file (README 'Limits')")
    try:
        if path.is_fifo() or path.is_socket() or path.is_char_device() or path.is_block_device():
            raise CaseError(path, None, None, "is not a regular file (a FIFO, socket or device: reading it could "
                                              "block or never end)")
        size = path.stat().st_size
        if size > MAX_FILE_BYTES:
            raise CaseError(path, None, None, f"{format_size(size)}: a case file may be at most "
                                              f"{format_size(MAX_FILE_BYTES)} (README 'Limits'); split it")
        raw = path.read_bytes()
    except OSError as error:
        raise CaseError(path, None, None, f"cannot read: {error.strerror or error}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[:error.start].count(b"\n") + 1
        column = error.start - raw.rfind(b"\n", 0, error.start)
        raise CaseError(path, line, None, f"not UTF-8 text: byte 0x{raw[error.start]:02x} at column {column}; "
                                          f"save the file as UTF-8") from None
    return load_cases_text(text, path, file_id, memory_budget=memory_budget)


def load_paths(paths, root: Path | str | None = None, *,
               memory_budget: int | str | None = DEFAULT_MEMORY_BUDGET) -> tuple[list[Case], list[CaseError]]:
    """Every case under ``paths`` (files or directories) and every problem found; never raises
    for bad input (``api.validate``). A directory is its own root unless ``root`` is given."""
    cases: list[Case] = []
    errors: list[CaseError] = []
    for path in map(Path, paths):
        if path.is_dir():
            files, file_root = sorted(p for p in path.rglob("*") if p.suffix in (".yaml", ".yml")), root or path
            if not files:
                errors.append(CaseError(path, None, None, "no case files (*.yaml, *.yml) in this directory"))
        elif path.exists() or path.is_symlink():
            files, file_root = [path], root
        else:
            errors.append(CaseError(path, None, None, "no such file or directory"))
            continue
        for file in files:
            try:
                cases += load_case_file(file, file_root, memory_budget=memory_budget)
            except CaseFileErrors as error:
                errors += error.errors
            except CaseError as error:
                errors.append(error)
    return cases, errors
