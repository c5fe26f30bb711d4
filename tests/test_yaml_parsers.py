"""Case files parse the same with libyaml as with PyYAML's Python parser (yaml_loader.parse_yaml).

libyaml parses every valid case file (~7x faster); anything it refuses, any alias and any nesting
beyond the limit goes to the Python parser, whose located errors the harness documents. Values,
the lines of every key, value and item, and every error must not depend on which parser ran.
"""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from conformance import yaml_loader

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(yaml_loader._CLoader is None, reason="this PyYAML has no libyaml")


def _shape(value):
    """``value`` with every line the loader recorded, as comparable tuples."""
    if isinstance(value, dict):
        return ("map", value.line, tuple((key, value.key_lines[key], value.value_lines[key], _shape(item))
                                         for key, item in value.items()))
    if isinstance(value, list):
        return ("seq", value.line, tuple(value.item_lines), tuple(_shape(item) for item in value))
    return (type(value).__name__, value)


def _outcome(text: str, path: str, monkeypatch, libyaml: bool):
    monkeypatch.setattr(yaml_loader, "_CLoader", yaml_loader._CLoader if libyaml else None)
    try:
        return _shape(yaml_loader.parse_yaml(text, path))
    except yaml_loader.CaseError as error:
        return ("error", type(error).__name__, str(error))


def _files():
    return sorted(ROOT.glob("cases/**/*.yaml")) + sorted(ROOT.glob("tests/**/*.yaml"))


def test_every_shipped_and_bad_case_file_parses_the_same_with_either_parser(monkeypatch):
    for path in _files():
        text = path.read_bytes().decode("utf-8", errors="replace")
        shown = str(path.relative_to(ROOT))
        if path.is_relative_to(ROOT / "cases"):
            assert yaml_loader._plain_tree(text), f"{shown}: a shipped case file should take the libyaml path"
        with monkeypatch.context() as patch:
            fast = _outcome(text, shown, patch, libyaml=True)
        with monkeypatch.context() as patch:
            assert fast == _outcome(text, shown, patch, libyaml=False), shown


NESTED = "op: GroupConvolution\ncases:\n  - name: deep\n    x: " + "[" * 12 + "1" + "]" * 12 + "\n"


@pytest.mark.parametrize("text", [
    "a: &anchor [1, 2]\nb: *anchor\n",                      # an alias: refused
    NESTED,                                                  # 16 levels with the scalar: accepted
    NESTED.replace("[1]", "[[1]]"),                          # 17: refused
    NESTED.replace("[1]", "[[]]"),                           # 16 with an empty list innermost: accepted
    "a: !!int abc\n",                                         # a tag that does not fit its value
    "a: 1\na: 2\n",                                           # a duplicate key
    "a: \"\\0\"\n",                                           # a refused character in a string
    "a: [1, 2\nb: 3\n",                                       # a syntax error
    "a: !!python/object:os.system ls\n",                      # an object tag
], ids=["alias", "16-levels", "17-levels", "16-levels-empty", "tag-mismatch", "duplicate-key", "refused-text",
        "syntax", "object-tag"])
def test_what_the_python_parser_checks_comes_out_the_same(monkeypatch, text):
    with monkeypatch.context() as patch:
        fast = _outcome(text, "case.yaml", patch, libyaml=True)
    with monkeypatch.context() as patch:
        slow = _outcome(text, "case.yaml", patch, libyaml=False)
    assert fast == slow
