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

    from conformance import releases, runtime
    from conformance.expectations import release_of
    release = release_of(runtime.openvino_version())
    assert metadata.version("openvino").split("-")[0] == release == releases.openvino_release()


CONTROLLER_IMPORTS_PROBE = """
import json, os, sys
from pathlib import Path

def pytest_unconfigure(config):
    if not os.environ.get("PYTEST_XDIST_WORKER"):   # the controller, its report written
        heavy = ("numpy", "torch", "openvino", "lxml", "conformance.api", "conformance.runtime")
        Path("controller-imports.json").write_text(json.dumps(sorted(name for name in heavy if name in sys.modules)))
"""


def test_the_xdist_controller_writes_the_report_without_importing_a_stage(pytester, monkeypatch):
    """On 2 cores the controller's CPU is taken from the workers: it imports neither numpy, torch,
    OpenVINO nor a stage, and the report it writes still names OpenVINO's build (from the items)."""
    make_suite(pytester)
    pytester.makeconftest(CONTROLLER_IMPORTS_PROBE)
    subprocess_env(monkeypatch)
    pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly").assert_outcomes(passed=5)
    assert read_json(pytester.path / "controller-imports.json") == []
    environment = read_json(pytester.path / "reports" / "conformance.json")["environment"]
    assert environment["openvino_version"].startswith("20") and environment["targets"] == ["CPU-f32"]


ATEXIT_PROBE = """
import atexit, os
from pathlib import Path

def _written_at_exit():
    Path(f"atexit-{os.environ.get('PYTEST_XDIST_WORKER', 'controller')}.txt").write_text("ran")

atexit.register(_written_at_exit)
"""


def test_xdist_workers_end_without_teardown_after_every_exit_handler(pytester, monkeypatch):
    """An xdist worker whose session is over ends with os._exit (no teardown of torch and OpenVINO),
    as the last of its exit handlers: a conftest's handler (registered after the plugin's) still runs."""
    make_suite(pytester)
    pytester.makeconftest(ATEXIT_PROBE)
    subprocess_env(monkeypatch)
    pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly").assert_outcomes(passed=5)
    assert sorted(path.name for path in pytester.path.glob("atexit-*.txt")) == \
        ["atexit-controller.txt", "atexit-gw0.txt", "atexit-gw1.txt"]


def test_only_an_xdist_worker_is_ended_early():
    from types import SimpleNamespace

    from conformance import plugin
    try:
        plugin.pytest_unconfigure(SimpleNamespace())                         # a serial run or the controller
        assert plugin._worker_finished is False
        plugin.pytest_unconfigure(SimpleNamespace(workerinput={}))
        assert plugin._worker_finished is True
    finally:
        plugin._worker_finished = False   # this process is not ended early


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

@pytest.hookimpl(wrapper=True)  # before every implementation: the plugin's own stops the workers
def pytest_sessionfinish(session):
    name = os.environ.get("PYTEST_XDIST_WORKER")
    if name:  # asked of the OpenVINO worker process this xdist worker ran its items in
        Path(f"threads-{name}.json").write_text(json.dumps(
            {"openvino_worker": worker.call(worker.cpu_inference_threads), "spawned": worker.pool().spawned}))
    return (yield)
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


def test_the_split_gives_each_worker_every_nth_item_and_a_replacement_nothing_up_front():
    from conformance.xdist_split import share
    shares = [list(share(f"gw{number}", 3, 8)) for number in range(3)]
    assert shares == [[0, 3, 6], [1, 4, 7], [2, 5]]
    assert list(share("gw3", 3, 8)) == [] and list(share("gw1", 2, 0)) == []   # a replacement; no items
    assert list(share("local", 2, 8)) == [] and list(share("gwx", 2, 8)) == []  # not an xdist worker id


def test_stealing_is_worth_it_only_from_a_slow_or_unknown_worker_or_a_long_queue():
    from conformance.xdist_split import STEAL_WORTH_SECONDS, worth_stealing
    quick = 0.015
    assert not worth_stealing(queued=20, finished=300, busy_seconds=0.01, mean_seconds=quick)
    assert worth_stealing(queued=20, finished=0, busy_seconds=0.01, mean_seconds=0.0)            # speed unknown
    assert worth_stealing(queued=4, finished=300, busy_seconds=STEAL_WORTH_SECONDS, mean_seconds=quick)  # slow item
    assert worth_stealing(queued=int(STEAL_WORTH_SECONDS / quick) + 1, finished=300, busy_seconds=0.0,
                          mean_seconds=quick)                                                    # long queue


class _FakeWorker:
    """What xdist's scheduler asks of a worker controller: its gateway id and three commands."""

    def __init__(self, number: int):
        self.gateway = type("Gateway", (), {"id": f"gw{number}"})()
        self.shutting_down, self.sent, self.stolen = False, [], []

    def send_runtest_some(self, indices):
        self.sent.extend(indices)

    def send_steal(self, indices):
        self.stolen.extend(indices)

    def shutdown(self):
        self.shutting_down = True


def _split_scheduler(item_count: int):
    from conformance.xdist_split import make_scheduler
    config = type("Config", (), {"getvalue": lambda self, name: ["2*popen"] if name == "tx" else None})()
    scheduler = make_scheduler(config, None)
    workers = [_FakeWorker(0), _FakeWorker(1)]
    collection = [f"case_{index}" for index in range(item_count)]
    for worker in workers:
        scheduler.add_node(worker)
        scheduler.add_node_collection(worker, collection)
    scheduler.schedule()
    return scheduler, workers


def test_a_worker_running_dry_waits_rather_than_steal_a_short_queue_of_quick_items():
    """gw1 ends its share while gw0, quick so far, has a few items left: gw1 waits (those items are
    compiled in gw0's batches already) and the run ends when gw0 is on its last item."""
    scheduler, (gw0, gw1) = _split_scheduler(20)
    assert gw0.sent == list(range(0, 20, 2)) and gw1.sent == list(range(1, 20, 2))
    for index in gw0.sent[:6]:
        scheduler.mark_test_complete(gw0, index, 0.015)
    for index in gw1.sent:
        scheduler.mark_test_complete(gw1, index, 0.015)
    assert gw0.stolen == [] and not scheduler.tests_finished
    for index in gw0.sent[6:9]:
        scheduler.mark_test_complete(gw0, index, 0.015)
    assert gw0.stolen == [] and scheduler.tests_finished


def test_a_worker_running_dry_steals_from_one_that_has_finished_nothing():
    """gw0 is still on its first item when gw1 ends its share: its speed is unknown, so gw1 takes
    half of its queue (work-stealing)."""
    scheduler, (gw0, gw1) = _split_scheduler(20)
    for index in gw1.sent:
        scheduler.mark_test_complete(gw1, index, 0.015)
    assert gw0.stolen == gw0.sent[-5:]   # half of its 10 (work-stealing keeps it two at least)


# Ten quick cases of one batch key.
SWEEP = """\
op: GroupConvolution
cases:
  - name: sweep
    data: [1, 4, 5, 5]
    kernel: [2, 2, 2, 3, 3]
    sweep:
      seed: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]
"""

# Records, per xdist worker, the case ids its session's lane was started with and the items it ran;
# ``SLOW_ITEM`` sleeps in the first item of gw0 (so gw1 runs dry first and steals).
WHO_RAN_PROBE = """
import json, os, time
from pathlib import Path
import pytest
from conformance import api

_original_start = api.RunSession.start

def _recording_start(self, upcoming, *args, **kwargs):
    started = [planned.case.id for planned in upcoming()]
    Path(f"started-{os.environ.get('PYTEST_XDIST_WORKER', 'serial')}.json").write_text(json.dumps(started))
    return _original_start(self, upcoming, *args, **kwargs)

api.RunSession.start = _recording_start

def pytest_collection_finish(session):
    Path(f"collected-{os.environ.get('PYTEST_XDIST_WORKER', 'serial')}.json").write_text(
        json.dumps([item.nodeid for item in session.items]))

def pytest_runtest_call(item):
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    with open(f"ran-{worker}.txt", "a") as ran:
        ran.write(item.nodeid + "\\n")
    if os.environ.get("SLOW_ITEM") and worker == "gw0" and item.nodeid.endswith("seed=1][CPU-f32]"):
        time.sleep(float(os.environ["SLOW_ITEM"]))
    if os.environ.get("CRASH_ITEM") and worker == "gw0" and item.nodeid.endswith("seed=3][CPU-f32]"):
        os._exit(3)   # the xdist worker itself dies (not an OpenVINO worker process)
"""


def _who_ran(root) -> tuple[list, dict, dict]:
    collected = read_json(root / "collected-gw0.json")
    ran = {path.stem[4:]: path.read_text().split() for path in sorted(root.glob("ran-gw*.txt"))}
    started = {path.stem[8:]: read_json(path) for path in sorted(root.glob("started-gw*.json"))}
    return collected, ran, started


def test_under_n_2_each_worker_knows_and_runs_every_other_item(pytester, monkeypatch):
    """The split scheduler (default with -n and --dist load): worker K is sent items K, K+2, ... of
    the collection, and its lane is started with exactly those at the end of its collection. (Which
    worker runs the last few may change: one that runs dry first takes some of the other's.)"""
    subprocess_project(pytester, monkeypatch, {"sweep.yaml": SWEEP})
    pytester.makeconftest(WHO_RAN_PROBE)
    pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly").assert_outcomes(passed=10)
    collected, ran, started = _who_ran(pytester.path)
    assert len(collected) == 10 and sorted(ran["gw0"] + ran["gw1"]) == sorted(collected)
    assert ran["gw0"][:2] == collected[0:4:2] and ran["gw1"][:2] == collected[1:4:2]
    case_ids = [nodeid.split("::", 1)[1].rsplit("[CPU", 1)[0] for nodeid in collected]
    assert started == {"gw0": [f"sweep.yaml::{case}" for case in case_ids[0::2]],
                       "gw1": [f"sweep.yaml::{case}" for case in case_ids[1::2]]}


def test_a_worker_that_runs_dry_takes_items_from_the_other(pytester, monkeypatch):
    """gw0's first item is slow: gw1 ends its own share and takes some of gw0's (work-stealing);
    every item still runs once."""
    subprocess_project(pytester, monkeypatch, {"sweep.yaml": SWEEP})
    pytester.makeconftest(WHO_RAN_PROBE)
    monkeypatch.setenv("SLOW_ITEM", "4")
    pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly").assert_outcomes(passed=10)
    collected, ran, _ = _who_ran(pytester.path)
    assert sorted(ran["gw0"] + ran["gw1"]) == sorted(collected)
    assert set(ran["gw1"]) > set(collected[1::2]), ran


def test_a_crashed_workers_items_still_run(pytester, monkeypatch):
    """gw0 dies on its second item: xdist reports that item as crashed, and the rest of gw0's share
    runs on the other worker or gw0's replacement."""
    subprocess_project(pytester, monkeypatch, {"sweep.yaml": SWEEP})
    pytester.makeconftest(WHO_RAN_PROBE)
    monkeypatch.setenv("CRASH_ITEM", "1")
    result = pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly")
    result.assert_outcomes(passed=9, failed=1)
    result.stdout.fnmatch_lines(["*sweep[[]seed=3[]]*crashed*"])
    collected, ran, _ = _who_ran(pytester.path)
    assert sorted(sum(ran.values(), [])) == sorted(collected)


def test_xdist_split_xdist_leaves_xdists_own_load_scheduling(pytester, monkeypatch):
    subprocess_project(pytester, monkeypatch, {"sweep.yaml": SWEEP})
    pytester.makeconftest(WHO_RAN_PROBE)
    pytester.runpytest_subprocess("-n", "2", "-p", "no:randomly", "--xdist-split", "xdist").assert_outcomes(passed=10)
    collected, ran, started = _who_ran(pytester.path)
    assert sorted(ran["gw0"] + ran["gw1"]) == sorted(collected)
    assert ran["gw0"] != collected[0::2]   # xdist's load sends consecutive chunks
    assert started == {"gw0": [], "gw1": []}   # a worker's items are not known at the end of its collection
