"""docs/spec-notes.md stays in step with the cases and the registry.

Every ``spec_note`` a case or an expected-failure entry points at must be an
anchor in docs/spec-notes.md, and every case id the notes cite as evidence
(``` `file.yaml::name` ```) must name cases that exist, so a renamed case or
a dropped section cannot leave a dangling reference.
"""
from __future__ import annotations

import re
from fnmatch import fnmatchcase
from pathlib import Path

import pytest

from conformance import api
from conformance.expectations import load_registry

ROOT = Path(__file__).resolve().parent.parent
NOTES = ROOT / "docs" / "spec-notes.md"
CASES = ROOT / "cases"
REGISTRY = ROOT / "expected_failures.yaml"

ANCHOR = re.compile(r'<a id="([a-z0-9-]+)"></a>')
# `spec_notes/x.yaml::name`, `::name` (same file as the previous citation), optional [sweep] pattern
CITATION = re.compile(r"`((?:[\w/]+\.yaml)?::[\w*?\[\]=,.-]+)`")


@pytest.fixture(scope="module")
def anchors() -> set[str]:
    return set(ANCHOR.findall(NOTES.read_text(encoding="utf-8")))


@pytest.fixture(scope="module")
def case_ids() -> list[str]:
    return [case.id for case in api.load_cases(CASES)]


def _note_id(reference: str) -> str:
    """``docs/spec-notes.md#sn-x`` or ``sn-x`` -> ``sn-x``."""
    return reference.rsplit("#", 1)[-1]


def test_case_spec_notes_are_anchors(anchors, case_ids):
    missing = {f"{case.id}: {case.spec_note}" for case in api.load_cases(CASES)
               if case.spec_note and _note_id(case.spec_note) not in anchors}
    assert not missing, "cases point at spec notes that docs/spec-notes.md does not have:\n" + "\n".join(sorted(missing))


def test_registry_spec_notes_are_anchors(anchors):
    missing = [f"{entry.source}: {entry.spec_note}" for entry in load_registry(REGISTRY)
               if entry.spec_note and _note_id(entry.spec_note) not in anchors]
    assert not missing, "expected_failures.yaml points at missing spec notes:\n" + "\n".join(missing)


def test_cited_cases_exist(case_ids):
    """Each `file.yaml::name[...]` in the notes matches at least one case id (as a prefix pattern)."""
    dangling, current_file = [], None
    for citation in CITATION.findall(NOTES.read_text(encoding="utf-8")):
        file, name = citation.split("::", 1)
        current_file = file or current_file
        pattern = f"{current_file}::{name}".replace("[", "[[]")
        if not any(fnmatchcase(case_id, pattern) or fnmatchcase(case_id, pattern + "[[]*")
                   for case_id in case_ids):
            dangling.append(f"{current_file}::{name}")
    assert not dangling, "docs/spec-notes.md cites cases that do not exist:\n" + "\n".join(dangling)


def test_every_note_cites_evidence():
    """Each section names at least one case or test that shows what OpenVINO does."""
    sections = re.split(r"\n(?=<a id=)", NOTES.read_text(encoding="utf-8"))[1:]
    bare = [ANCHOR.search(section).group(1) for section in sections
            if not CITATION.search(section) and "tests/" not in section and "probed" not in section]
    assert not bare, f"spec notes without a demonstrating case, test or probe: {bare}"


def test_disagreement_classes_link_to_notes(anchors):
    """The known-disagreement classes of tests/test_shape_inference.py point at existing notes."""
    from tests.test_shape_inference import CPU_DISAGREEMENTS, SHAPE_INFERENCE_DISAGREEMENTS
    missing = [f"{known.id}: {known.spec_note}" for known in SHAPE_INFERENCE_DISAGREEMENTS + CPU_DISAGREEMENTS
               if known.spec_note not in anchors]
    assert not missing, f"disagreement classes without a spec note: {missing}"
