"""Repro bundles: written for failing items, linked from the failure and the report, runnable alone."""
from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pytest

from reporting_support import CORRUPT, REPO_ROOT, checkout_pythonpath, in_process_project, make_suite, read_json

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
    assert "0 of 8 elements outside the tolerance (the harness reported 1 of 8)" in run.stdout
    # ...and reports a mismatch against the spec's values when there is one.
    expected = np.load(copy / "expected.npy")
    expected.flat[3] += 2.0
    np.save(copy / "expected.npy", expected)
    run = subprocess.run([sys.executable, copy / "reproduce.py"], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 1 and "1 of 8 elements outside the tolerance (the harness reported 1 of 8); worst at " \
        "[0, 0, 3]" in run.stdout


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


# Known deviations of the CPU plugin (expected_failures.yaml) run as failures (--runxfail): wrong
# i32 results (exact tolerance), and models it refuses to compile (GROUPS = 1 BackpropData, an
# output_shape Parameter with static data).
KNOWN_DEVIATIONS = "i32_beyond_float32 or single_group or output_shape_parameter"


def test_every_failing_item_has_a_bundle_that_reproduces_the_verdict(tmp_path):
    """Compile failures included: each bundle's reproduce.py exits 1 with the harness's own count."""
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:randomly", "--runxfail", "-k", KNOWN_DEVIATIONS,
         f"--repro-dir={tmp_path / 'repro'}", f"--conformance-report={tmp_path / 'conformance.json'}",
         f"--ir-dir={tmp_path / 'ir'}"],
        cwd=REPO_ROOT, capture_output=True, text=True, env={**__import__("os").environ,
                                                             "PYTHONPATH": checkout_pythonpath()})
    items = read_json(tmp_path / "conformance.json")["items"]
    failing = [item for item in items if item["outcome"] not in ("passed", "skipped")]
    if not failing:
        pytest.skip(f"this OpenVINO shows none of the known deviations ({KNOWN_DEVIATIONS})")
    assert run.returncode == 1, run.stdout[-3000:]
    counted = rejected = 0
    for item in failing:
        assert item["repro"], f"{item['case_id']}: {item['outcome']} without a repro bundle"
        bundle = (tmp_path / item["repro"]).resolve()
        assert item["run"].get("ir"), f"{item['case_id']}: no IR path in the report"
        config = read_json(bundle / "config.json")
        assert config["harness"]["imported_from"] == str(REPO_ROOT / "conformance")
        script = subprocess.run([sys.executable, bundle / "reproduce.py"], capture_output=True, text=True,
                                cwd=tmp_path, timeout=120)
        assert script.returncode == 1, f"{item['case_id']}: {script.stdout}{script.stderr}"
        if item["verdict"].get("mismatches"):
            verdict = item["verdict"]
            assert f"{verdict['mismatches']} of {verdict['total']} elements outside the tolerance" in script.stdout
            counted += 1
        else:   # OpenVINO refused the model: the script shows the same error
            assert "OpenVINO failed" in script.stdout
            (harness_line,) = [line for line in item["reason"].splitlines() if line.startswith("OpenVINO failed to")]
            openvino_line = script.stdout.strip().splitlines()[-1].strip()   # the error's last line
            assert harness_line.endswith(openvino_line), (harness_line, script.stdout)
            rejected += 1
    assert counted + rejected == len(failing)


RUNTIME_KERNEL = """\
op: GroupConvolution
cases:
  - name: broken_runtime_kernel
    data: [1, 4, 5, 5]
    kernel: [2, 3, 2, 3, 3]
    kernel_input: parameter
"""


def test_reproduce_feeds_every_runtime_input(pytester, tmp_path):
    """A kernel fed at inference time is in the bundle and fed by reproduce.py (not left uninitialised)."""
    (in_process_project(pytester) / "conv.yaml").write_text(RUNTIME_KERNEL)
    pytester.makeconftest(CORRUPT)   # the harness sees element 0 off by one; OpenVINO itself is right
    pytester.runpytest("--repro-dir", "bundles").assert_outcomes(failed=1)
    (bundle,) = (pytester.path / "bundles").iterdir()
    config = read_json(bundle / "config.json")
    assert set(config["feeds"]) == {"data", "kernel"}
    assert config["verdict"] == {"mismatches": 1, "total": 3 * 2 * 3 * 3}
    script = subprocess.run([sys.executable, bundle / "reproduce.py"], capture_output=True, text=True, cwd=tmp_path)
    assert script.returncode == 0, script.stdout + script.stderr
    assert "0 of 54 elements outside the tolerance (the harness reported 1 of 54)" in script.stdout
