"""Determinism, pytest-xdist and sharded runs: the same JSON report apart from timing fields."""
from __future__ import annotations

import pytest

from conformance import cli, report
from reporting_support import BACKPROP, CASES, make_suite, read_json, subprocess_env, subprocess_project


def _report(root, name: str = "conformance.json") -> dict:
    return read_json(root / "reports" / name)


def test_two_runs_with_the_same_seeds_and_targets_give_identical_reports(pytester):
    make_suite(pytester, corrupt=True)
    pytester.runpytest().assert_outcomes(passed=4, failed=1)
    first = _report(pytester.path)
    first_html = (pytester.path / "reports" / "conformance.html").read_text()
    pytester.runpytest().assert_outcomes(passed=4, failed=1)
    second = _report(pytester.path)
    assert report.without_timing(first) == report.without_timing(second)
    assert first_html == (pytester.path / "reports" / "conformance.html").read_text()
    assert first != second or pytest.fail("timing fields did not change: is duration still recorded?")
    # The comparison is sensitive: another seed changes the inputs, hence the IR and the errors.
    cases = pytester.path / "cases" / "backprop.yaml"
    cases.write_text(cases.read_text().replace("seed: 7", "seed: 8"))
    pytester.runpytest()
    assert report.without_timing(_report(pytester.path)) != report.without_timing(first)


def test_xdist_writes_one_report_equal_to_a_serial_run(pytester, monkeypatch):
    make_suite(pytester, corrupt=True)
    pytester.runpytest().assert_outcomes(passed=4, failed=1)
    serial = _report(pytester.path)
    subprocess_env(monkeypatch)
    result = pytester.runpytest_subprocess("-n", "2")
    result.assert_outcomes(passed=4, failed=1)
    result.stdout.fnmatch_lines(["*created: 2/2 workers*", "*4 passed, 1 failed; JSON:*"])
    assert report.without_timing(_report(pytester.path)) == report.without_timing(serial)


def test_shards_merged_equal_a_single_run(pytester, capsys):
    make_suite(pytester, corrupt=True)
    pytester.runpytest().assert_outcomes(passed=4, failed=1)
    single = _report(pytester.path)
    shards = []
    for group in (1, 2):
        result = pytester.runpytest("--splits", "2", "--group", str(group),
                                    "--conformance-report", f"reports/shard-{group}.json")
        shards.append(_report(pytester.path, f"shard-{group}.json"))
        assert 0 < len(shards[-1]["items"]) < 5, result.stdout.str()
    reports = pytester.path / "reports"
    assert cli.main(["merge-reports", str(reports / "shard-1.json"), str(reports / "shard-2.json"),
                     "-o", str(reports / "merged.json")]) == 0
    assert report.without_timing(_report(pytester.path, "merged.json")) == report.without_timing(single)
    # Markdown and HTML are regenerated from the merged JSON: the same pages as the single run's.
    for suffix in (".md", ".html"):
        merged = (reports / f"merged{suffix}").read_text().replace("merged.html", "conformance.html")
        assert merged == (reports / f"conformance{suffix}").read_text()
    # Overlapping shards are refused, saying which item is in both.
    assert cli.main(["merge-reports", str(reports / "shard-1.json"), str(reports / "shard-1.json"),
                     "-o", str(reports / "bad.json")]) == 1
    assert "is in more than one report (shards overlap)" in capsys.readouterr().err


def test_collection_and_the_header_import_neither_torch_nor_openvino(monkeypatch):
    """The xdist controller only collects nothing, prints the header and writes the report:
    torch (~1 s) and OpenVINO are imported by whoever first computes or runs something."""
    import subprocess
    import sys

    from reporting_support import REPO_ROOT
    subprocess_env(monkeypatch)
    probe = ("import sys, pytest\n"
             "code = pytest.main(['--collect-only', '-p', 'no:randomly', 'cases'])\n"
             "heavy = sorted(name for name in ('torch', 'openvino') if name in sys.modules)\n"
             "print('HEAVY', heavy)\n"
             "sys.exit(code or bool(heavy))\n")
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO_ROOT, capture_output=True, text=True)
    assert "HEAVY []" in result.stdout and result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "conformance: OpenVINO 20" in result.stdout   # the header still names the release


def test_the_release_read_without_importing_openvino_is_the_runtimes():
    from importlib import metadata

    from conformance import runtime
    from conformance.expectations import release_of
    release = release_of(runtime.openvino_version())
    assert metadata.version("openvino").split("-")[0] == release == runtime.openvino_release()


THREADS_PROBE = """
import json, os
from pathlib import Path

def pytest_sessionfinish(session):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if worker:
        import torch
        from conformance.runtime import core
        Path(f"threads-{worker}.json").write_text(json.dumps(
            {"torch": torch.get_num_threads(),
             "openvino": int(core().get_property("CPU", "INFERENCE_NUM_THREADS"))}))
"""


def test_xdist_workers_share_the_cores_one_thread_each(pytester, monkeypatch):
    """-n 2 on 2 cores: each worker runs torch and OpenVINO single-threaded (no oversubscription)."""
    import os
    make_suite(pytester)
    pytester.makeconftest(THREADS_PROBE)
    subprocess_env(monkeypatch)
    pytester.runpytest_subprocess("-n", "2").assert_outcomes(passed=5)
    expected = max(1, (os.cpu_count() or 1) // 2)
    seen = [read_json(path) for path in sorted(pytester.path.glob("threads-gw*.json"))]
    assert seen == [{"torch": expected, "openvino": expected}] * 2


ISOLATED_THREADS_PROBE = """
import json, os
from pathlib import Path
import pytest
from conformance import worker

@pytest.hookimpl(tryfirst=True)  # before the plugin's own, which stops the workers
def pytest_sessionfinish(session):
    name = os.environ.get("PYTEST_XDIST_WORKER")
    if name:  # asked of the OpenVINO worker process this xdist worker ran its items in
        Path(f"threads-{name}.json").write_text(json.dumps(
            {"openvino_worker": worker.call(worker.cpu_inference_threads), "spawned": worker.pool().spawned}))
"""


def test_isolated_xdist_workers_run_openvino_one_thread_each(pytester, monkeypatch):
    """-n 2, isolated (the default): the OpenVINO worker process of each xdist worker runs
    single-threaded too, and one worker process serves all of an xdist worker's items."""
    import os
    subprocess_project(pytester, monkeypatch, {"conv.yaml": CASES, "backprop.yaml": BACKPROP})
    pytester.makeconftest(ISOLATED_THREADS_PROBE)
    pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly").assert_outcomes(passed=5)
    expected = max(1, (os.cpu_count() or 1) // 2)
    seen = [read_json(path) for path in sorted(pytester.path.glob("threads-gw*.json"))]
    assert [entry["openvino_worker"] for entry in seen] == [expected] * 2
    assert all(entry["spawned"] == 1 for entry in seen), seen
