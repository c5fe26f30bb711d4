"""The registry held against a release matrix: disagreements found, ranges suggested."""
from __future__ import annotations

import json

from conformance import cli, expectations, registry_ranges

RELEASES = ["2023.0.0", "2024.0.0", "2024.1.0", "2025.0.0", "2026.4.1"]

REGISTRY = """
- case: "a.yaml::regressed*"
  openvino: ">=2024.1.0"
  fails: error
  reason: compile error since 2024.1.0
- case: "a.yaml::fixed"
  openvino: "<2025.0.0"
  reason: wrong values until 2025.0.0
- case: "a.yaml::twice"
  openvino: ">=2023.0.0"
  reason: too wide a range on purpose
- case: "a.yaml::other_cpu"
  openvino: ">=2023.0.0"
  cpu: {has: [avx512_core_amx]}
  reason: only with AMX
"""


def _matrix(rows: dict[str, str], target: str = "CPU-f32") -> dict:
    letters = {"P": "pass", "M": "mismatch", "E": "error", "C": "crashed"}
    return {"target": target, "releases": RELEASES,
            "cells": {case: {release: {"status": letters[mark]} for release, mark in zip(RELEASES, marks)}
                      for case, marks in rows.items()}}


ROWS = {"a.yaml::regressed[x=1]": "PPEEE", "a.yaml::regressed[x=2]": "PPEEE", "a.yaml::fixed": "MMMPP",
        "a.yaml::twice": "MPPMM", "a.yaml::clean": "PPPPP", "a.yaml::other_cpu": "PPPPP"}
AVX2 = ("sse41", "avx", "avx2")


def _entries(tmp_path):
    path = tmp_path / "registry.yaml"
    path.write_text(REGISTRY)
    return expectations.load_registry(path)


def test_check_lists_exactly_the_cells_the_registry_gets_wrong(tmp_path):
    disagreements = registry_ranges.check(_entries(tmp_path), _matrix(ROWS), AVX2)
    assert [(d.case_id, d.release, d.observed, d.expected) for d in disagreements] == [
        ("a.yaml::twice", "2024.0.0", "pass", "mismatch"), ("a.yaml::twice", "2024.1.0", "pass", "mismatch")]
    assert disagreements[0].entry == "registry.yaml:9"
    assert "registry expects mismatch (entry registry.yaml:9)" in disagreements[0].describe()


def test_a_failure_no_entry_covers_is_a_disagreement(tmp_path):
    rows = {**ROWS, "a.yaml::clean": "PPPPM"}
    disagreements = registry_ranges.check(_entries(tmp_path), _matrix(rows), AVX2)
    assert ("a.yaml::clean", "2026.4.1", "mismatch", "pass", None) in [
        (d.case_id, d.release, d.observed, d.expected, d.entry) for d in disagreements]


def test_suggest_gives_measured_ranges_runs_and_the_oldest_release_caveat(tmp_path):
    suggestions = {s.entry: s for s in registry_ranges.suggest(_entries(tmp_path), _matrix(ROWS), AVX2)}
    assert suggestions["registry.yaml:2"].ranges == (">=2024.1.0",) and suggestions["registry.yaml:2"].cases == 2
    assert suggestions["registry.yaml:6"].ranges == (">=2023.0.0,<2025.0.0",)
    assert "oldest release measured" in suggestions["registry.yaml:6"].describe()
    assert suggestions["registry.yaml:9"].ranges == (">=2023.0.0,<2024.0.0", ">=2025.0.0")
    assert "one entry per range" in suggestions["registry.yaml:9"].describe()
    assert "registry.yaml:12" not in suggestions   # its cpu condition does not hold on an AVX2 CPU


def test_mixed_releases_are_named_not_counted(tmp_path):
    rows = {**ROWS, "a.yaml::regressed[x=2]": "PPPEE"}
    suggestion = next(s for s in registry_ranges.suggest(_entries(tmp_path), _matrix(rows), AVX2)
                      if s.entry == "registry.yaml:2")
    assert suggestion.ranges == (">=2025.0.0",) and suggestion.mixed == ("2024.1.0",)


def test_the_matrix_target_cap_decides_the_features():
    cpu = type("Cpu", (), {"features": ("sse41", "avx", "avx2"),
                           "effective": lambda self, cap: ("sse41",) if cap == "sse41" else self.features})()
    assert registry_ranges.matrix_features(_matrix({}, "CPU-f32-sse41"), cpu) == ("sse41",)
    assert registry_ranges.matrix_features(_matrix({}, "CPU-f32"), cpu) == ("sse41", "avx", "avx2")


def test_cli_check_exits_1_on_disagreement_and_0_when_the_registry_fits(tmp_path, capsys):
    registry = tmp_path / "registry.yaml"
    registry.write_text(REGISTRY)
    matrix = tmp_path / "matrix.json"
    matrix.write_text(json.dumps(_matrix(ROWS)))
    assert cli.main(["registry", "check", str(matrix), "--expected-failures", str(registry)]) == 1
    assert "2 disagreement(s) over 30 cells (6 cases x 5 releases on CPU-f32)" in capsys.readouterr().out
    fitting = {case: marks for case, marks in ROWS.items() if case != "a.yaml::twice"}
    matrix.write_text(json.dumps(_matrix(fitting)))
    assert cli.main(["registry", "check", str(matrix), "--expected-failures", str(registry)]) == 0
    assert cli.main(["registry", "suggest", str(matrix), "--expected-failures", str(registry)]) == 0
    assert "fail its way on '>=2024.1.0'" in capsys.readouterr().out


def test_cli_refuses_a_file_that_is_not_a_matrix(tmp_path, capsys):
    not_matrix = tmp_path / "report.json"
    not_matrix.write_text(json.dumps({"items": []}))
    assert cli.main(["registry", "check", str(not_matrix)]) == 2
    assert "not a release matrix" in capsys.readouterr().err
