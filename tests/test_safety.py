"""Safe by construction: XML without entities, names escaped, case files kept in the cases tree,
memory budget configurable from pytest."""
from __future__ import annotations

import time
from pathlib import Path

import openvino as ov
import pytest
from lxml import etree

from conformance import api, cli
from conformance.render import parse_xml, render_bytes
from reporting_support import subprocess_project, write_project

BILLION_LAUGHS = """<?xml version="1.0"?>
<!DOCTYPE net [
  <!ENTITY lol "lol">
  <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
  <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
  <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
  <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
  <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
  <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
  <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
  <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
  <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<net name="&lol9;" version="11"><layers/><edges/></net>
"""


def test_billion_laughs_is_refused_quickly(tmp_path):
    path = tmp_path / "net.xml"
    path.write_text(BILLION_LAUGHS)
    start = time.perf_counter()
    with pytest.raises((ValueError, etree.XMLSyntaxError), match="DOCTYPE|entit"):
        parse_xml(path)
    assert time.perf_counter() - start < 1.0


def test_external_entity_is_refused_and_never_read(tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    path = tmp_path / "Parameter.xml"
    path.write_text(f'<?xml version="1.0"?>\n<!DOCTYPE layer [<!ENTITY x SYSTEM "file://{secret}">]>\n'
                    f'<layer type="Parameter" version="opset1"><data>&x;</data></layer>\n')
    with pytest.raises(ValueError, match="DOCTYPE"):
        parse_xml(path)
    # Even the bare parser never expands it (resolve_entities=False, no network, no DTD loading).
    from conformance.render import _PARSER
    assert b"TOP-SECRET" not in etree.tostring(etree.parse(str(path), _PARSER))


def test_the_shipped_templates_parse_strictly():
    from conformance.render import templates_dir
    for template in templates_dir().glob("*.xml"):
        assert parse_xml(template).getroot() is not None


NASTY = 'x<&"\'>y'


def test_names_with_markup_characters_are_escaped_in_the_ir(tmp_path):
    text = f"op: GroupConvolution\ncases:\n  - name: '{NASTY.replace(chr(39), chr(39) * 2)}'\n" \
           f"    data: [1, 2, 5]\n    kernel: [2, 1, 1, 3]\n"
    [case] = api.load_cases_text(text, "we<ird&.yaml")
    assert case.name == NASTY
    xml, _ = render_bytes(case, api.make_inputs(case))
    assert NASTY.encode() not in xml  # escaped, never raw
    assert parse_xml_bytes(xml).get("name") == case.id
    exported = api.export(case, tmp_path)
    assert "<" not in exported.xml_path.name and "&" not in exported.xml_path.name
    model = ov.Core().read_model(str(exported.xml_path))
    assert model.get_friendly_name() == case.id


def parse_xml_bytes(xml: bytes):
    from conformance.render import _PARSER
    return etree.fromstring(xml, _PARSER)


def _write_case(path: Path, data="[1, 2, 5]", kernel="[2, 1, 1, 3]"):
    path.write_text(f"op: GroupConvolution\ncases:\n  - name: a\n    data: {data}\n    kernel: {kernel}\n")


def test_validate_refuses_a_symlink_escaping_the_cases_tree(tmp_path, capsys):
    root = tmp_path / "cases"
    root.mkdir()
    _write_case(tmp_path / "elsewhere.yaml")
    (root / "escape.yaml").symlink_to(tmp_path / "elsewhere.yaml")
    _write_case(root / "fine.yaml")
    assert cli.main(["validate", str(root)]) == 1
    out, _ = capsys.readouterr()
    assert f"{root / 'escape.yaml'}: is a symlink to a file outside the cases tree" in out
    assert "fine.yaml" not in out


def test_plugin_refuses_escaping_symlink_and_applies_the_memory_budget(pytester, monkeypatch):
    cases = subprocess_project(pytester, monkeypatch, {})
    _write_case(pytester.path / "outside.yaml")
    (cases / "escape.yaml").symlink_to(pytester.path / "outside.yaml")
    _write_case(cases / "big.yaml", data="[1, 2, 3000, 3000]", kernel="[2, 1, 1, 3, 3]")          # ~1 GB
    _write_case(cases / "huge.yaml", data="[1, 2, 100000, 100000]", kernel="[2, 1, 1, 3, 3]")     # ~2 TB
    result = pytester.runpytest_subprocess("-q", "-rs", "--memory-budget", "64MiB")
    # Over max(budget, 16 GiB) a shape is refused when the file loads (nothing allocated); over the
    # budget alone the item is skipped at run time (this machine's limit, not a broken case).
    result.assert_outcomes(failed=2, skipped=1)
    result.stdout.fnmatch_lines(["*escape.yaml: is a symlink to a file outside the cases tree*"])
    result.stdout.fnmatch_lines(["*huge.yaml:4: data: this case needs about * over the memory budget of 16 GiB*"])
    result.stdout.fnmatch_lines(["*SKIPPED*big.yaml*over the memory budget of 64 MiB*"])
    # A larger budget (ini option) lets the huge case load; the symlink is still refused.
    write_project(pytester.path, {}, ini_extra="conformance_memory_budget = 100TiB\n")
    result = pytester.runpytest_subprocess("--collect-only", "-q")
    result.stdout.fnmatch_lines(["*big.yaml::a*", "*escape.yaml::invalid-case-file*", "*huge.yaml::a*"])
