"""Stage 1: case YAML -> fully resolved ``Case`` dataclasses (the loader).

A case file names an op, optional ``defaults`` and a list of ``cases``; each
case may carry a ``sweep`` block whose cartesian product becomes one ``Case``
per combination. Everything is checked here, before anything runs, and every
problem is a ``CaseError`` that names ``file:line: field: what is wrong``.

The pieces: ``yaml_loader.py`` reads the YAML keeping every line (``CaseError``),
``schema.py`` holds ``SCHEMA`` (one entry per field) and ``Case``, ``memory.py`` the
memory model the budget is checked with, and the op registry (``ops/``) each op's
own fields, kernel layout and formulas. This module checks, for every expanded
combination:

1. each field's value against its entry in ``SCHEMA`` (type, range);
2. the style translation (``styles.py``: PyTorch/MATLAB fields -> spec fields);
3. the relations between spec fields (ranks, channels, the op's own fields, output
   size, memory budget).

All cases of a file are checked; ``load_cases_text`` raises one
``CaseFileErrors`` listing every problem (``.errors``), so ``validate`` shows
them all and the pytest plugin shows them in one failed item.
"""
from __future__ import annotations

import difflib
import itertools
import re
import unicodedata
import zlib
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any, Iterator

from . import ops, post_ops, styles
from .memory import (DEFAULT_MEMORY_BUDGET, SLAB_ELEMENTS, STREAM_THRESHOLD_ELEMENTS,  # noqa: F401 (re-exported)
                     footprint_bytes, format_size, memory_culprit, parse_size, streamed)
from .ops import FieldError
from .ops.group_convolution_backprop_data import INT32_MAX  # noqa: F401 (re-exported: a harness limit)
from .schema import (ALL, ENTRY_ONLY, FILE_FIELDS, INT64_MAX, MAX_CASES_PER_FILE,  # noqa: F401
                     MAX_SWEEP_COMBINATIONS, MAX_TOLERANCE_SCALE, REQUIRED, SCHEMA, _CASE_ATTRIBUTES, Case, Field, Source,
                     _check_keys, _dynamic, _text, _unknown_key, fields_for)
from .yaml_loader import (_NOT_IN_TEXT, MAX_FILE_BYTES, CaseError, CaseFileErrors,  # noqa: F401 (re-exported)
                          _describe_character, _Mapping, _printable, _show, parse_yaml, printable_path)

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
            located = entry.error(key, f"{problem.message}; allowed: {SCHEMA[key].allowed}")
            if getattr(problem, "line", None):   # an item of a list field (post_ops): its own line
                located = CaseError(entry.path, problem.line, f"{located.field}{problem.field}", located.message)
            problems.append(located)
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
    problem = post_ops.relation_problem(case)
    if problem:
        raise entry.error("post_ops", problem)
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
            culprit = memory_culprit(case, memory_budget)
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
