"""Stage 1: case YAML -> fully resolved ``Case`` dataclasses (the loader).

A case file names an op, optional ``defaults`` and a list of ``cases``; each
case may carry a ``sweep`` block whose cartesian product becomes one ``Case``
per combination. Everything is checked here, before anything runs, and every
problem is a ``CaseError`` that names ``file:line: field: what is wrong``.

The pieces: ``yaml_loader.py`` reads the YAML keeping every line (``CaseError``),
``schema.py`` holds ``SCHEMA`` (one entry per field) and ``Case``, ``case_checks.py`` the
checks between a combination's fields, ``memory.py`` the memory model the budget is
checked with, and the op registry (``ops/``) each op's own fields, kernel layout and
formulas. This module expands files and sweeps and, for every expanded combination:

1. each field's value against its entry in ``SCHEMA`` (type, range);
2. the style translation (``styles.py``: PyTorch/MATLAB fields -> spec fields);
3. the relations between spec fields (``case_checks``: ranks, channels, the op's own
   fields, numerics, limits), the output size and the memory budget.

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
from math import prod
from pathlib import Path
from typing import Any, Iterator

from . import ops, post_ops, styles
from .case_checks import Entry, check_representable, dynamic_data, numerics, relations
from .memory import (DEFAULT_MEMORY_BUDGET, SLAB_ELEMENTS, STREAM_THRESHOLD_ELEMENTS,  # noqa: F401 (re-exported)
                     footprint_bytes, format_size, memory_culprit, parse_size, streamed)
from .ops import FieldError
from .ops.group_convolution_backprop_data import INT32_MAX  # noqa: F401 (re-exported: a harness limit)
from .schema import (ALL, ENTRY_ONLY, FILE_FIELDS, INT64_MAX, MAX_CASES_PER_FILE,  # noqa: F401
                     MAX_SWEEP_COMBINATIONS, MAX_TOLERANCE_SCALE, REQUIRED, SCHEMA, _CASE_ATTRIBUTES, Case, Field, Source,
                     _check_keys, _dynamic, _text, _unknown_key, fields_for)
from .yaml_loader import (_NOT_IN_TEXT, MAX_FILE_BYTES, CaseError, CaseFileErrors,  # noqa: F401 (re-exported)
                          _describe_character, _Mapping, _printable, _show, located, parse_yaml,
                          printable_path)

def _build_case(entry: Entry, op: str, case_id: str, name: str, sweep, memory_budget: int | None) -> Case:
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
    origin = styles.ORIGIN.get(style, {})
    data_dims, spec_values = dynamic_data(entry, spec_values, common)
    resolved = relations(entry, op, spec_values, origin)
    numeric_fields = numerics(entry, common, resolved)
    seed = common.get("seed", zlib.crc32(case_id.encode()))
    # Any other common field named like a Case attribute goes straight into it (absent: its default).
    passthrough = {key: value for key, value in common.items()
                   if key in _CASE_ATTRIBUTES and key not in ("seed", "fill", "marks", "style", "infer_shapes")
                   and key not in numeric_fields}
    case = Case(
        id=case_id, name=name, op=op, **resolved, seed=seed, fill=common.get("fill", "integers"),
        source=Source(entry.path, entry.entry_line), sweep=sweep, marks=common.get("marks", ()),
        style=style, data_dims=data_dims,
        infer_shapes=tuple(common.get("infer_shapes", ())) if data_dims else (), **numeric_fields, **passthrough)
    check_representable(entry, case, origin)
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
        entry = Entry(path=path, entry_line=raw.line)
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


def load_cases_document(document: dict, path: Path | str = "<document>", *,
                        memory_budget: int | str | None = DEFAULT_MEMORY_BUDGET) -> list[Case]:
    """The cases of a case-file document built in Python (plain dicts, lists, strings, numbers), as
    ``load_cases_text`` of its YAML dump gives them, without writing and parsing the text (the
    fuzzer loads thousands); errors carry no line numbers. Raises ``CaseError`` as that does."""
    budget = parse_size(memory_budget) if memory_budget is not None else None
    return _load_document(located(document), str(path), None, budget)


def _load_text(text: str, path: str, file_id: str | None, budget: int | None) -> list[Case]:
    """``load_cases_text`` without its last-resort handler."""
    if len(text) > MAX_FILE_BYTES:
        raise CaseError(path, None, None, f"{len(text)} characters: a case file may be at most "
                                          f"{format_size(MAX_FILE_BYTES)} (README 'Limits'); split it")
    return _load_document(parse_yaml(text, path), path, file_id, budget)


def _load_document(document, path: str, file_id: str | None, budget: int | None) -> list[Case]:
    """The cases of a parsed document (``parse_yaml``: mappings and lists that know their lines)."""
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


def select(spec: str, cases_root: Path, memory_budget) -> list[Case]:
    """Cases named by a file path, or by a case id ``file::name[sweep]`` (relative to the
    cases root); an id without its ``[sweep]`` part selects every combination."""
    file_part, _, case_part = spec.partition("::")
    path = Path(file_part)
    if not path.exists() and (cases_root / file_part).exists():
        path = cases_root / file_part
    if not path.exists():
        raise CaseError(file_part, None, None, f"no such case file (looked here and under {cases_root}/)")
    inside = cases_root.exists() and cases_root.resolve() in path.resolve().parents
    cases = load_case_file(path, cases_root if inside else None, memory_budget=memory_budget)
    if not case_part:
        return cases
    in_file = {case.id: case.id.split("::", 1)[1] for case in cases}   # name[sweep]
    chosen = [case for case in cases if case_part in (in_file[case.id], case.name)]
    if not chosen:
        names = ", ".join(sorted(set(in_file.values()))[:20])
        raise CaseError(path, None, None, f"no case {case_part!r} in this file (it has: {names})")
    return chosen
