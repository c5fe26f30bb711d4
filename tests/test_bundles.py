"""Result bundles: what --save-results writes, and compare-bundles on identical runs and an injected difference."""
from __future__ import annotations

import io
import json
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from conformance import cli
from conformance.bundles import (compare_bundles, compare_bundles_command, cross_target_diffs, diff_outputs,
                                 load_bundle)

from reporting_support import SMALL_CASES, checkout_pythonpath, write_project


def test_diff_outputs_against_the_sum_of_both_bounds():
    a = np.array([1.0, 2.0, 3.0], np.float32)
    bound = np.full(3, 0.1, np.float32)
    same = diff_outputs("c", "x", "y", a, a.copy(), bound, bound)
    assert (same.differing, same.beyond, same.max_abs_diff) == (0, 0, 0.0)
    close = diff_outputs("c", "x", "y", a, a + np.float32(0.15), bound, bound)   # each may be 0.1 off the spec
    assert close.differing == 3 and not close.beyond_tolerance
    assert diff_outputs("c", "x", "y", a, a + np.float32(0.15), bound, bound, exact=True).beyond == 3
    far = diff_outputs("c", "x", "y", a, np.array([1.0, 2.5, 3.0], np.float32), bound, bound)
    assert far.beyond == 1 and far.max_abs_diff == pytest.approx(0.5)
    nan = diff_outputs("c", "x", "y", a, np.array([1.0, np.nan, 3.0], np.float32), bound, bound)
    assert nan.beyond == 1 and nan.max_abs_diff == float("inf")
    shape = diff_outputs("c", "x", "y", a, a[:2], bound, bound[:2])
    assert shape.beyond_tolerance and "shapes differ" in shape.note


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Two separate pytest sessions over the same cases, each saving a bundle (CPU f32 and AUTO f32)."""
    project = tmp_path_factory.mktemp("project")
    write_project(project, {"small.yaml": SMALL_CASES})
    bundles = []
    for name in ("a", "b"):
        completed = subprocess.run(
            [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", "--target", "CPU:f32",
             "--target", "AUTO:f32", "--save-results", str(project / name)],
            cwd=project, env={**os.environ, "PYTHONPATH": checkout_pythonpath()}, capture_output=True, text=True)
        assert completed.returncode == 0, completed.stdout + completed.stderr
        bundles.append(project / name)
    return bundles


def test_bundle_contents(two_runs):
    manifest, items = load_bundle(two_runs[0])
    assert manifest["targets"] == ["CPU-f32", "AUTO-f32"]
    assert manifest["openvino_version"] and manifest["machine"]["cpu"]["model"]
    assert manifest["harness"]["imported_from"].endswith("conformance")
    assert set(items) == {(case, target) for case in ("small.yaml::dw", "small.yaml::grouped")
                          for target in ("CPU-f32", "AUTO-f32")}
    metadata = items[("small.yaml::dw", "CPU-f32")].metadata
    for key in ("ir_digest", "inputs_digest", "openvino_version", "primitive_type", "cpu_model", "config"):
        assert metadata[key], key
    assert isinstance(metadata["cpu_isa_flags"], list)
    assert metadata["config"]["INFERENCE_PRECISION_HINT"] == "f32"
    output, bound = items[("small.yaml::dw", "CPU-f32")].arrays()
    assert output.shape == (1, 8, 6, 6) and bound.shape == output.shape and (bound >= 0).all()
    assert {d.case_id for d in cross_target_diffs(two_runs[0])} == {"small.yaml::dw", "small.yaml::grouped"}


def test_identical_runs_compare_clean(two_runs):
    out = io.StringIO()
    assert compare_bundles_command(str(two_runs[0]), str(two_runs[1]), exact=True, out=out) == 0, out.getvalue()
    assert "4 item(s) compared; 0 differ at all; 0 beyond tolerance" in out.getvalue()


def test_injected_difference_is_found_in_that_case_only(two_runs, tmp_path):
    changed = tmp_path / "changed"
    shutil.copytree(two_runs[1], changed)
    _, items = load_bundle(changed)
    item = items[("small.yaml::grouped", "CPU-f32")]
    output, bound = item.arrays()
    output = output.copy()
    output[0, 3, 2, 2] += 1.0          # far beyond the f32 bound of a 36-term dot product of values in [-1, 1]
    np.savez_compressed(item.npz_path, output=output, bound=bound)
    out = io.StringIO()
    assert compare_bundles_command(str(two_runs[0]), str(changed), out=out) == 1
    text = out.getvalue()
    assert "4 item(s) compared; 1 differ at all; 1 beyond tolerance" in text
    rows = [line for line in text.splitlines() if line.startswith("small.yaml::")]
    assert len(rows) == 1 and rows[0].startswith("small.yaml::grouped") and "CPU-f32" in rows[0]
    assert cli.main(["compare-bundles", str(two_runs[0]), str(changed)]) == 1     # the command line
    assert cli.main(["compare-bundles", str(two_runs[0]), str(two_runs[1])]) == 0
    differences, _ = compare_bundles(two_runs[0], changed)
    worst = max(differences, key=lambda d: d.max_abs_diff)
    assert worst.max_abs_diff == pytest.approx(1.0) and worst.beyond == 1


def test_compare_one_target_against_another(two_runs):
    differences, notes = compare_bundles(two_runs[0], two_runs[1], target_a="AUTO-f32", target_b="CPU-f32")
    assert {(d.a, d.b) for d in differences} == {("AUTO-f32", "CPU-f32")} and len(differences) == 2
    assert not notes


def test_unmatched_items_and_bad_bundles_are_reported(two_runs, tmp_path):
    partial = tmp_path / "partial"
    shutil.copytree(two_runs[1], partial)
    for path in (partial / "items").glob("small.yaml_dw-*@AUTO-f32.*"):
        path.unlink()
    out = io.StringIO()
    assert compare_bundles_command(str(two_runs[0]), str(partial), out=out) == 0
    assert "1 item(s) only in" in out.getvalue()
    out = io.StringIO()
    assert compare_bundles_command(str(two_runs[0]), str(tmp_path / "missing"), out=out) == 2
    assert "not a result bundle" in out.getvalue()
    json.loads((two_runs[0] / "bundle.json").read_text())
