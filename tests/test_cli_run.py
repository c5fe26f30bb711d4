"""``ov-conformance run``: the CLI checks items through ``api.RunSession``, the pytest plugin's path, and
ends them as the plugin does (policy, bundles, report records)."""
from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from types import SimpleNamespace
from pathlib import Path

import pytest

from conformance import api, cli
from reporting_support import CASES, REPO_ROOT

# Passing items, strict xfails of a mismatch (the output_shape split) and of a rejected model
# (GROUPS = 1 BackpropData), on the shipped cases and registry.
FILES = ["cases/spec_notes/backprop_output_shape.yaml", "cases/group_convolution_backprop_data/groups.yaml"]
# Fields that differ between two runs of the same items (wall-clock times, where the IR was written).
VARYING = {"duration_seconds", "read_seconds", "compile_seconds", "infer_seconds", "oracle_seconds",
           "compare_seconds", "ir"}


def _items(report: Path) -> dict:
    def steady(value):
        if isinstance(value, dict):
            return {key: steady(item) for key, item in value.items() if key not in VARYING}
        return value
    return {item["nodeid"]: steady(item) for item in json.loads(report.read_text())["items"]}


def test_run_ends_every_item_as_the_pytest_plugin_does(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(REPO_ROOT)
    code = cli.main(["run", *FILES, "--report", str(tmp_path / "cli.json"), "--repro-dir", str(tmp_path / "repro"),
                     "--ir-dir", str(tmp_path / "ir")])
    out, err = capsys.readouterr()
    assert code == 0, out
    environment = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    finished = subprocess.run(
        # One model per case, as the CLI runs them (a batched item's record says run.batch).
        [sys.executable, "-m", "pytest", *FILES, "-q", "-p", "no:cacheprovider", "--batch-size", "1", "--repro-dir",
         str(tmp_path / "repro"), "--ir-dir", str(tmp_path / "ir"),
         f"--conformance-report={tmp_path / 'pytest.json'}"],
        cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=900)
    assert finished.returncode == 0, finished.stdout[-3000:]
    from_cli, from_pytest = _items(tmp_path / "cli.json"), _items(tmp_path / "pytest.json")
    assert from_cli.keys() == from_pytest.keys()
    outcomes = {nodeid: item["outcome"] for nodeid, item in from_pytest.items()}
    assert {nodeid: item["outcome"] for nodeid, item in from_cli.items()} == outcomes
    assert set(outcomes.values()) == {"passed", "xfailed"}
    for nodeid, item in from_pytest.items():
        # The same record: run (device, primitive, precisions, IR digest), verdict, reason, kinds, source.
        assert from_cli[nodeid] == item, nodeid
    assert out.count("PASSED ") == list(outcomes.values()).count("passed")
    assert "xfailed" in err and "failed," not in err


def test_a_failing_item_prints_its_message_writes_its_repro_bundle_and_exits_1(tmp_path, monkeypatch, capsys):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "planted.yaml").write_text(CASES)
    original = api.run

    def corrupting_run(ir, sequence, target, *args, **kwargs):   # a real mismatch, whatever OpenVINO does
        result = original(ir, sequence, target, *args, **kwargs)
        if "broken" in Path(ir.xml_path).read_text():
            output = result.output.copy()
            output.flat[0] += 1.0
            result = dataclasses.replace(result, output=output)
        return result
    monkeypatch.setattr(api, "run", corrupting_run)
    monkeypatch.chdir(tmp_path)
    report = tmp_path / "reports" / "cli.json"
    code = cli.main(["run", "cases", "--no-isolate", "--report", str(report), "--expected-failures", "none.yaml"])
    out, _ = capsys.readouterr()
    assert code == 1
    assert "FAILED planted.yaml::broken_b [CPU-f32]" in out
    assert "OpenVINO's output differs from the spec" in out and "repro bundle: reports/repro/" in out
    items = {item["case_id"]: item for item in json.loads(report.read_text())["items"]}
    broken = items["planted.yaml::broken_b"]
    assert broken["outcome"] == "failed" and broken["verdict"]["mismatches"] >= 1
    assert (report.parent / broken["repro"] / "reproduce.py").is_file()   # relative to the report
    assert broken["per_group"]["sibling"] == "Convolution"
    assert [items[key]["outcome"] for key in sorted(items) if "ok_a" in key] == ["passed", "passed"]


def test_a_file_that_does_not_load_is_a_failed_row_and_exit_1(tmp_path, monkeypatch, capsys):
    (tmp_path / "cases").mkdir()
    (tmp_path / "cases" / "bad.yaml").write_text("op: GroupConvolution\ncases:\n  - name: x\n    data: [1, 2]\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "cases", "--report", "r.json"]) == 1
    out, _ = capsys.readouterr()
    assert "cases/bad.yaml:" in out
    [item] = json.loads((tmp_path / "r.json").read_text())["items"]
    assert item["outcome"] == "failed" and item["op"] == "(invalid case file)"
    assert item["source"] == "cases/bad.yaml:3" and "kernel: is required" in item["reason"]


@pytest.mark.parametrize("argument", ["--target=CPU:f99", "--expected-failures=broken.yaml"])
def test_bad_options_exit_2(tmp_path, monkeypatch, capsys, argument):
    (tmp_path / "broken.yaml").write_text("- case: [\n")
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", str(REPO_ROOT / FILES[0]), argument]) == 2
    assert capsys.readouterr().err.strip()


def _result(status: str, **fields) -> api.ItemResult:
    [case] = api.load_cases_text(CASES.split("  - name: broken_b")[0])[:1]
    return api.ItemResult(case, api.Target("CPU", "f32"), status, message=f"{status} message", **fields)


@pytest.mark.parametrize("registered, status, conflict, expected", [
    (None, "passed", None, "passed"),
    (None, "rejected", None, "failed"),
    (None, "untrustworthy", None, "failed"),
    (None, "crashed", None, "crashed"),
    ("mismatch", "passed", None, "xpassed"),           # strict
    ("error", "rejected", None, "xfailed"),
    ("mismatch", "rejected", None, "failed"),          # only the registered kind counts
    ("crashed", "crashed", None, "xfailed"),
    ("mismatch", "hung", None, "hung"),
    ("crashed", "hung", "registered as 'crashed', but the worker hung", "hung"),
    (None, "unavailable", None, "skipped"),
])
def test_item_ending_counts_only_the_registered_kind_of_failure(registered, status, conflict, expected):
    """api.item_ending: how pytest's strict xfail (raises= the registered kind) ends an item."""
    policy = api.ItemPolicy(expected=SimpleNamespace(fails=registered, intermittent=False) if registered else None,
                            reason="known")
    failure = api.WorkerFailure(status, "detail") if status in ("crashed", "hung") else None
    outcome, reason = api.item_ending(_result(status, failure=failure, registry_conflict=conflict), policy)
    assert outcome == expected
    assert (reason == "known") == (outcome == "xfailed")


def test_item_ending_of_an_intermittent_entry_is_non_strict():
    """An entry registered ``intermittent``: its pass is a pass (with the reason), its failure xfailed."""
    policy = api.ItemPolicy(expected=SimpleNamespace(fails="mismatch", intermittent=True), reason="flaky")
    assert api.item_ending(_result("passed"), policy) == ("passed", "flaky")
    assert api.item_ending(_result("failed"), policy) == ("xfailed", "flaky")
    assert api.item_ending(_result("rejected"), policy)[0] == "failed"


def test_item_policy_skips_slow_and_over_budget_items():
    [case] = api.load_cases_text(CASES.split("  - name: broken_b")[0])[:1]
    target = api.Target("CPU", "f32")
    assert api.item_policy(case, target, [], "2026.4.1") == api.ItemPolicy()
    assert "over the memory budget" in api.item_policy(case, target, [], "2026.4.1", memory_budget=1).skip
    slow = dataclasses.replace(case, marks=("slow",))
    assert "--runslow" in api.item_policy(slow, target, [], "2026.4.1").skip
    assert api.item_policy(slow, target, [], "2026.4.1", run_slow=True).skip is None
