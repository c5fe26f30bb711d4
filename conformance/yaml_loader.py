"""Case YAML -> Python values that remember their lines, and located errors.

``parse_yaml`` reads a case file with ``yaml.SafeLoader`` (no object tags, no aliases, bounded
nesting, duplicate keys refused); mappings and sequences come back as ``dict``/``list`` subclasses
carrying the line of themselves, of each key and of each item, so every later check can say
``file:line: field: what is wrong`` (``CaseError``).
"""
from __future__ import annotations

import re
import reprlib
import unicodedata
from pathlib import Path
from typing import Any

import yaml

MAX_FILE_BYTES = 1 << 20          # a case file is text a person writes: 1 MiB is ~20,000 lines
MAX_NESTING = 16                  # YAML depth: a case file needs 6 (file, cases, entry, sweep, list, list)


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


class _Constructing:
    """The constructing half shared by the Python and the libyaml loader: a tag that does not fit
    its value is a located error."""

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


class _Loader(_Constructing, yaml.SafeLoader):
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


def located(value) -> Any:
    """``value`` (plain dicts, lists, scalars) as ``parse_yaml`` returns a document: mappings and
    lists that know their lines, here all 0 (unknown: the document was built in Python)."""
    if isinstance(value, dict):
        mapping = _Mapping((key, located(item)) for key, item in value.items())
        mapping.key_lines = dict.fromkeys(value, 0)
        mapping.value_lines = dict.fromkeys(value, 0)
        return mapping
    if isinstance(value, (list, tuple)):
        sequence = _Sequence(located(item) for item in value)
        sequence.item_lines = [0] * len(sequence)
        return sequence
    return value


if getattr(yaml, "__with_libyaml__", False):
    class _CLoader(_Constructing, yaml.CSafeLoader):
        """libyaml's parser with ``_Loader``'s constructors: ~7x faster than the Python parser on the
        shipped cases. Its composer is C code (``compose_node`` cannot be overridden), so aliases and
        nesting are checked on the event stream first (``_plain_tree``)."""

        def __init__(self, stream, path):
            super().__init__(stream)
            self.path = path

    _CLoader.yaml_constructors = _Loader.yaml_constructors   # the same constructors, one table
else:   # a PyYAML built without libyaml: the Python parser does it all
    _CLoader = None

_OPENING = (yaml.MappingStartEvent, yaml.SequenceStartEvent)
_CLOSING = (yaml.MappingEndEvent, yaml.SequenceEndEvent)


def _plain_tree(text: str) -> bool:
    """Whether ``text`` parses (libyaml events) with no alias and at most ``MAX_NESTING`` levels
    of nesting: what ``_Loader.compose_node`` would accept. False also for a syntax error."""
    depth = 0
    try:
        for event in yaml.parse(text, Loader=yaml.CSafeLoader):
            if isinstance(event, _OPENING):
                depth += 1
                if depth > MAX_NESTING - 1:   # _Loader counts the scalars below the innermost level too
                    return False
            elif isinstance(event, _CLOSING):
                depth -= 1
            elif isinstance(event, yaml.AliasEvent):
                return False
    except yaml.YAMLError:
        return False
    return True


def parse_yaml(text: str, path: Path | str) -> Any:
    """Parse YAML safely; syntax errors become a ``CaseError`` at the offending line."""
    bad = _NOT_IN_FILE.search(text)
    if bad:
        before = text[:bad.start()]
        line = len(re.findall("\r\n|\r|\n", before)) + 1
        column = bad.start() - max(before.rfind("\n"), before.rfind("\r"))
        raise CaseError(path, line, None, f"{_describe_character(bad.group())} at column {column}: a case file may "
                                          f"hold only printable text, tabs and line breaks (README 'Limits')")
    if _CLoader is not None and _plain_tree(text):
        # A valid file by libyaml: the same constructors (lines, refused text) on a C parse. Anything
        # libyaml refuses, and any alias or deep nesting, goes to the Python parser below, which
        # gives the located error (its messages and lines are the ones the harness documents).
        loader = _CLoader(text, path)
        try:
            return loader.get_single_data()
        except yaml.MarkedYAMLError:
            pass
        finally:
            loader.dispose()
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


