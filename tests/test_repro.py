"""Repro bundles: written for failing items, linked from the failure and the report, runnable alone."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from reporting_support import make_suite, read_json

BUNDLE_FILES = {"model.xml", "model.bin", "data.npy", "data.bin", "kernel.npy", "expected.npy", "bound.npy",
                "actual.npy", "config.json", "reproduce.py", "command.txt", "benchmark_app.json"}


@pytest.fixture
def failed_run(pytester):
    make_suite(pytester, corrupt=True)
    result = pytester.runpytest("--repro-dir", "out/bundles")
    result.assert_outcomes(passed=4, failed=1)
    return pytester.path, result


def test_bundle_holds_ir_tensors_config_and_commands(failed_run):
    root, result = failed_run
    (bundle,) = (root / "out" / "bundles").iterdir()
    assert {path.name for path in bundle.iterdir()} == BUNDLE_FILES
    config = read_json(bundle / "config.json")
    assert config["case"]["name"] == "broken_b" and config["case"]["source"] == f"{root}/cases/conv.yaml:10"
    assert config["target"] == {"id": "CPU-f32", "device": "CPU", "precision": "f32",
                                "compile_properties": {"INFERENCE_PRECISION_HINT": "f32"}}
    assert config["openvino_version"] and config["outcome"] == "failed" and "outside the tolerance" in config["message"]
    actual, expected = np.load(bundle / "actual.npy"), np.load(bundle / "expected.npy")
    assert expected.dtype == np.float64 and actual.shape == expected.shape
    assert np.count_nonzero(actual != expected) == 1  # the injected error, element 0
    assert np.array_equal(np.fromfile(bundle / "data.bin", dtype=np.float32), np.load(bundle / "data.npy").ravel())
    # The failure message and the report both point at it.
    relative = bundle.relative_to(root).as_posix()
    result.stdout.fnmatch_lines([f"repro bundle: {relative}/", f"reproduce: python {relative}/reproduce.py",
                                 f"reproduce: benchmark_app -m {relative}/model.xml -d CPU *"])
    (item,) = [item for item in read_json(root / "reports" / "conformance.json")["items"] if item["repro"]]
    assert (root / "reports" / item["repro"]).resolve() == bundle.resolve()
    assert f'href="{item["repro"]}/"' in (root / "reports" / "conformance.html").read_text()


def test_reproduce_script_runs_outside_the_harness(failed_run, tmp_path):
    root, _ = failed_run
    (bundle,) = (root / "out" / "bundles").iterdir()
    copy = shutil.copytree(bundle, tmp_path / "moved")  # a bundle is self-contained
    # OpenVINO itself is right here (the harness injected the error): the script says so...
    run = subprocess.run([sys.executable, copy / "reproduce.py"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert "0 of 8 elements outside the tolerance" in run.stdout
    # ...and reports a mismatch against the spec's values when there is one.
    expected = np.load(copy / "expected.npy")
    expected.flat[3] += 2.0
    np.save(copy / "expected.npy", expected)
    run = subprocess.run([sys.executable, copy / "reproduce.py"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1 and "1 of 8 elements outside the tolerance; worst at [0, 0, 3]" in run.stdout


@pytest.mark.skipif(shutil.which("benchmark_app") is None, reason="benchmark_app is not on PATH")
def test_benchmark_app_line_runs(failed_run):
    root, _ = failed_run
    (bundle,) = (root / "out" / "bundles").iterdir()
    line = (bundle / "command.txt").read_text().splitlines()[1]
    assert line.startswith("benchmark_app ")
    run = subprocess.run(line, shell=True, cwd=root, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "Count:" in run.stdout


def test_passing_items_write_no_bundle(pytester):
    make_suite(pytester)
    pytester.runpytest().assert_outcomes(passed=5)
    assert not (pytester.path / "reports" / "repro").exists()
    assert all(item["repro"] is None for item in read_json(pytester.path / "reports" / "conformance.json")["items"])
