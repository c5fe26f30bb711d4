"""Stage 1: case YAML -> fully resolved ``Case`` dataclasses.

A case file names an op, optional ``defaults`` and a list of ``cases``; each
case may carry a ``sweep`` block whose cartesian product becomes one ``Case``
per combination. Everything is checked here, before anything runs, and every
problem is a ``CaseError`` that names ``file:line: field: what is wrong``.
"""
from __future__ import annotations

import itertools
import zlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import yaml

from . import shapes

CASE_FIELDS = (
    "data", "kernel", "strides", "pads_begin", "pads_end", "dilations", "auto_pad",
    "output_padding", "output_shape", "fill", "seed", "marks", "spec_note", "description",
    "allow_negative_pads",
)
PER_AXIS_FIELDS = ("strides", "pads_begin", "pads_end", "dilations", "output_padding", "output_shape")
FILE_FIELDS = ("op", "defaults", "cases", "description")
ENTRY_FIELDS = CASE_FIELDS + ("name", "sweep")
FILLS = ("integers", "uniform")
MARKS = ("slow",)


class CaseError(Exception):
    """A problem in a case file, located at ``path:line`` and naming the field."""

    def __init__(self, path: Path | str, line: int | None, field_name: str | None, message: str):
        self.path, self.line, self.field, self.message = str(path), line, field_name, message
        super().__init__(str(self))

    def __str__(self) -> str:
        where = f"{self.path}:{self.line}" if self.line else self.path
        return f"{where}: {self.field}: {self.message}" if self.field else f"{where}: {self.message}"


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
    # The specs say pads are "positive"/"non-negative"; a case probing what a
    # runtime does with negative pads opts in explicitly (docs/spec-notes.md#sn-negative-pads).
    allow_negative_pads: bool = False

    @property
    def spatial_rank(self) -> int:
        return len(self.data_shape) - 2

    def geometry(self) -> shapes.Geometry:
        """Groups, effective pads and output shape as the spec defines them."""
        if self.op == shapes.GROUP_CONVOLUTION:
            return shapes.group_convolution_geometry(
                self.data_shape, self.kernel_shape, self.strides, self.pads_begin,
                self.pads_end, self.dilations, self.auto_pad)
        return shapes.group_convolution_backprop_data_geometry(
            self.data_shape, self.kernel_shape, self.strides, self.pads_begin, self.pads_end,
            self.dilations, self.auto_pad, self.output_padding, self.output_shape)

    def attributes(self) -> dict[str, str]:
        """The op's IR ``<data>`` attributes, as OpenVINO's IR writes them."""
        attrs = {
            "strides": _join(self.strides),
            "pads_begin": _join(self.pads_begin),
            "pads_end": _join(self.pads_end),
            "dilations": _join(self.dilations),
            "auto_pad": self.auto_pad,
        }
        if self.op == shapes.GROUP_CONVOLUTION_BACKPROP_DATA:
            attrs["output_padding"] = _join(self.output_padding or (0,) * self.spatial_rank)
        return attrs


def _join(values) -> str:
    return ",".join(str(v) for v in values)


# --- YAML with line numbers --------------------------------------------------

class _Mapping(dict):
    """A dict that remembers the line of itself and of each key."""

    line: int = 0
    key_lines: dict


class _Sequence(list):
    line: int = 0


class _Loader(yaml.SafeLoader):
    """``yaml.SafeLoader`` (no object tags) that keeps line numbers and rejects duplicate keys."""

    def __init__(self, stream, path):
        super().__init__(stream)
        self.path = path


def _construct_mapping(loader: _Loader, node: yaml.MappingNode) -> _Mapping:
    mapping = _Mapping()
    mapping.line = node.start_mark.line + 1
    mapping.key_lines = {}
    for key_node, value_node in node.value:
        key = loader.construct_object(key_node, deep=True)
        key_line = key_node.start_mark.line + 1
        if not isinstance(key, (str, int, float, bool)) or key is None:
            raise CaseError(loader.path, key_line, None, f"mapping key {key!r} is not a plain name")
        if key in mapping:
            raise CaseError(loader.path, key_line, str(key),
                            f"duplicate key (first given on line {mapping.key_lines[key]})")
        mapping[key] = loader.construct_object(value_node, deep=True)
        mapping.key_lines[key] = key_line
    return mapping


def _construct_sequence(loader: _Loader, node: yaml.SequenceNode) -> _Sequence:
    sequence = _Sequence(loader.construct_object(child, deep=True) for child in node.value)
    sequence.line = node.start_mark.line + 1
    return sequence


_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_mapping)
_Loader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_SEQUENCE_TAG, _construct_sequence)


def parse_yaml(text: str, path: Path | str) -> Any:
    """Parse YAML safely; syntax errors become a ``CaseError`` at the offending line."""
    loader = _Loader(text, path)
    try:
        return loader.get_single_data()
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        line = mark.line + 1 if mark else None
        raise CaseError(path, line, None, f"YAML syntax error: {error.problem}") from None
    except yaml.YAMLError as error:
        raise CaseError(path, None, None, f"YAML error: {error}") from None
    finally:
        loader.dispose()


# --- field checks --------------------------------------------------------------

@dataclass
class _Entry:
    """A case entry's merged fields, each with the line it came from."""

    path: str
    values: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    entry_line: int = 0

    def error(self, name: str, message: str) -> CaseError:
        return CaseError(self.path, self.lines.get(name, self.entry_line), name, message)

    def get(self, name, default=None):
        return self.values.get(name, default)


def _suggest(name: str, allowed) -> str:
    import difflib
    close = difflib.get_close_matches(name, allowed, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown field{hint} (allowed: {', '.join(sorted(allowed))})"


def _check_keys(path, mapping: _Mapping, allowed, what: str) -> None:
    for key in mapping:
        if key not in allowed:
            raise CaseError(path, mapping.key_lines.get(key, mapping.line), str(key), _suggest(str(key), allowed))


def _int_list(entry: _Entry, name: str, *, minimum: int | None, rank: int | None) -> tuple[int, ...]:
    """A per-axis integer attribute; a bare integer is broadcast to every axis."""
    value = entry.get(name)
    if isinstance(value, bool) or not isinstance(value, (int, list)):
        raise entry.error(name, f"expected a list of integers, got {value!r}")
    if isinstance(value, int):
        if rank is None:
            raise entry.error(name, "expected a list of integers (a bare integer needs a known rank)")
        value = [value] * rank
    if not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise entry.error(name, f"expected a list of integers, got {list(value)!r}")
    if rank is not None and len(value) != rank:
        raise entry.error(name, f"has {len(value)} values but the data has {rank} spatial axes")
    if minimum is not None and any(v < minimum for v in value):
        raise entry.error(name, f"values must be >= {minimum}, got {list(value)!r}")
    return tuple(value)


def _shape(entry: _Entry, name: str) -> tuple[int, ...]:
    if name not in entry.values:
        raise entry.error(name, "is required")
    value = entry.get(name)
    if not isinstance(value, list) or not value:
        raise entry.error(name, f"expected a shape (list of positive integers), got {value!r}")
    return _int_list(entry, name, minimum=1, rank=None)


def _build_case(entry: _Entry, op: str, case_id: str, name: str,
                sweep: tuple[tuple[str, Any], ...]) -> Case:
    data_shape = _shape(entry, "data")
    kernel_shape = _shape(entry, "kernel")
    if not 3 <= len(data_shape) <= 5:
        raise entry.error("data", f"rank must be 3, 4 or 5 (1D/2D/3D), got {len(data_shape)}: {list(data_shape)}")
    if len(kernel_shape) != len(data_shape) + 1:
        raise entry.error("kernel", f"rank must be data rank + 1 = {len(data_shape) + 1}, got {len(kernel_shape)}")
    rank = len(data_shape) - 2
    layout = "[GROUPS, C_OUT, C_IN, ...]" if op == shapes.GROUP_CONVOLUTION else "[GROUPS, C_IN, C_OUT, ...]"
    in_per_group = kernel_shape[2] if op == shapes.GROUP_CONVOLUTION else kernel_shape[1]
    if data_shape[1] != kernel_shape[0] * in_per_group:
        raise entry.error("kernel", f"data has {data_shape[1]} channels but kernel {layout} "
                          f"{list(kernel_shape)} needs GROUPS*C_IN = {kernel_shape[0] * in_per_group}")

    def axes(attr, default, minimum):
        if attr not in entry.values:
            return (default,) * rank
        return _int_list(entry, attr, minimum=minimum, rank=rank)

    strides = axes("strides", 1, 1)
    dilations = axes("dilations", 1, 1)
    allow_negative_pads = entry.get("allow_negative_pads", False)
    if not isinstance(allow_negative_pads, bool):
        raise entry.error("allow_negative_pads", f"expected true or false, got {allow_negative_pads!r}")
    pads_begin = axes("pads_begin", 0, None)
    pads_end = axes("pads_end", 0, None)
    for name, pads in (("pads_begin", pads_begin), ("pads_end", pads_end)):
        if not allow_negative_pads and any(pad < 0 for pad in pads):
            raise entry.error(name, f"values must be >= 0, got {list(pads)!r} "
                              "(set allow_negative_pads: true to probe negative pads)")
    auto_pad = entry.get("auto_pad", "explicit")
    if auto_pad not in shapes.AUTO_PADS:
        raise entry.error("auto_pad", f"{auto_pad!r} is not one of {', '.join(shapes.AUTO_PADS)}")
    output_padding = output_shape = None
    if op == shapes.GROUP_CONVOLUTION:
        for only_backprop in ("output_padding", "output_shape"):
            if only_backprop in entry.values:
                raise entry.error(only_backprop, f"only {shapes.GROUP_CONVOLUTION_BACKPROP_DATA} has this")
    else:
        output_padding = axes("output_padding", 0, 0)
        for axis, (pad, stride, dilation) in enumerate(zip(output_padding, strides, dilations)):
            if pad >= max(stride, dilation):
                raise entry.error("output_padding", f"axis {axis}: {pad} must be smaller than the stride "
                                  f"({stride}) or the dilation ({dilation})")
        if entry.get("output_shape") is not None:
            output_shape = _int_list(entry, "output_shape", minimum=1, rank=rank)

    fill = entry.get("fill", "integers")
    if fill not in FILLS:
        raise entry.error("fill", f"{fill!r} is not one of {', '.join(FILLS)}")
    seed = entry.get("seed", zlib.crc32(case_id.encode()))
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise entry.error("seed", f"expected a non-negative integer, got {seed!r}")
    marks = entry.get("marks", [])
    if not isinstance(marks, list) or any(m not in MARKS for m in marks):
        raise entry.error("marks", f"expected a list of {', '.join(MARKS)}, got {marks!r}")

    case = Case(
        id=case_id, name=name, op=op, data_shape=data_shape, kernel_shape=kernel_shape,
        strides=strides, pads_begin=pads_begin, pads_end=pads_end, dilations=dilations,
        auto_pad=auto_pad, output_padding=output_padding, output_shape=output_shape,
        seed=seed, fill=fill, source=Source(entry.path, entry.entry_line), sweep=sweep,
        marks=tuple(marks), spec_note=entry.get("spec_note"), description=entry.get("description"),
        allow_negative_pads=allow_negative_pads)
    out = case.geometry().output_shape
    if any(dim < 1 for dim in out[2:]):
        where = "output_shape" if output_shape else "data"
        raise entry.error(where, f"the spec's output shape would be {list(out)}: every spatial size must be >= 1")
    return case


def _format_value(value) -> str:
    if isinstance(value, list):
        return "x".join(str(v) for v in value)
    return str(value)


def _expand(path: str, op: str, defaults: _Mapping, raw: _Mapping, file_id: str) -> Iterator[Case]:
    _check_keys(path, raw, ENTRY_FIELDS, "case")
    name = raw.get("name")
    if not isinstance(name, str) or not name or any(c in name for c in "[]:/ "):
        raise CaseError(path, raw.key_lines.get("name", raw.line), "name",
                        f"every case needs a name without spaces, '[', ']', ':' or '/', got {name!r}")
    sweep = raw.get("sweep") or _Mapping()
    if not isinstance(sweep, dict):
        raise CaseError(path, raw.key_lines.get("sweep", raw.line), "sweep",
                        "expected a mapping of field: [values...]")
    for key, values in sweep.items():
        if key not in CASE_FIELDS:
            raise CaseError(path, sweep.key_lines.get(key, sweep.line), f"sweep.{key}", _suggest(str(key), CASE_FIELDS))
        if not isinstance(values, list) or not values:
            raise CaseError(path, sweep.key_lines.get(key, sweep.line), f"sweep.{key}",
                            "expected a non-empty list of values to sweep over")
    keys = list(sweep)
    for combination in itertools.product(*(sweep[k] for k in keys)):
        entry = _Entry(path=path, entry_line=raw.line)
        for source in (defaults, raw):
            for key, value in source.items():
                if key in ("name", "sweep"):
                    continue
                entry.values[key] = value
                entry.lines[key] = source.key_lines.get(key, source.line)
        for key, value in zip(keys, combination):
            entry.values[key] = value
            entry.lines[key] = sweep.key_lines.get(key, sweep.line)
        swept = tuple(zip(keys, combination))
        suffix = "-".join(f"{k}={_format_value(v)}" for k, v in swept)
        case_id = f"{file_id}::{name}" + (f"[{suffix}]" if suffix else "")
        yield _build_case(entry, op, case_id, name, swept)


def load_cases_text(text: str, path: Path | str = "<text>", file_id: str | None = None) -> list[Case]:
    """Parse one case file's text into resolved cases; raises ``CaseError`` on the first problem."""
    path = str(path)
    document = parse_yaml(text, path)
    if document is None:
        raise CaseError(path, 1, None, "the file is empty: expected 'op:' and 'cases:'")
    if not isinstance(document, dict):
        raise CaseError(path, 1, None, "expected a mapping with 'op:' and 'cases:' at the top level")
    _check_keys(path, document, FILE_FIELDS, "file")
    op = document.get("op")
    if op not in shapes.OPS:
        raise CaseError(path, document.key_lines.get("op", 1), "op",
                        f"{op!r} is not one of {', '.join(shapes.OPS)}")
    defaults = document.get("defaults") or _Mapping()
    if not isinstance(defaults, dict):
        raise CaseError(path, document.key_lines.get("defaults", 1), "defaults", "expected a mapping")
    _check_keys(path, defaults, CASE_FIELDS, "defaults")
    entries = document.get("cases")
    if not isinstance(entries, list) or not entries:
        raise CaseError(path, document.key_lines.get("cases", 1), "cases", "expected a non-empty list of cases")
    cases: list[Case] = []
    seen: dict[str, int] = {}
    for raw in entries:
        if not isinstance(raw, dict):
            raise CaseError(path, getattr(entries, "line", 1), "cases", f"every entry must be a mapping, got {raw!r}")
        for case in _expand(path, op, defaults, raw, file_id or Path(path).name):
            if case.id in seen:
                raise CaseError(path, raw.line, "name", f"case id {case.id} repeats the one from line {seen[case.id]}")
            seen[case.id] = raw.line
            cases.append(case)
    return cases


def load_case_file(path: Path | str, root: Path | str | None = None) -> list[Case]:
    """Load one case file; ids are relative to ``root`` (the cases tree) when given."""
    path = Path(path)
    file_id = path.name
    if root is not None:
        try:
            file_id = path.resolve().relative_to(Path(root).resolve()).as_posix()
        except ValueError:
            raise CaseError(path, None, None, f"is outside the cases tree {root}") from None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise CaseError(path, None, None, f"cannot read: {error}") from None
    return load_cases_text(text, path, file_id)
