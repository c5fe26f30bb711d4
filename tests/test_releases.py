"""conformance.releases: release lists, cached release environments, bisection, the release matrix,
and the worker running another interpreter (portable arrays)."""
from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import api, cli, releases, worker
from conformance.releases import (BAD, DIFFERS, GOOD, MISMATCH, NOT_INSTALLABLE, PASS, EnvironmentCache,
                                  InstallFailed, ReleaseOutcome, bisect, failure_signature, max_runs)
from conformance.runtime import Target

REPO = Path(__file__).resolve().parents[1]

PIP_INDEX_OUTPUT = """\
WARNING: pip index is currently an experimental command. It may be removed/changed in a future release without prior warning.
openvino (2026.4.1)
Available versions: 2026.4.1, 2026.4.0, 2024.6.0, 2023.0.10, 2023.0.2, 2024.0.0rc1
  INSTALLED: 2026.4.1
  LATEST:    2026.4.1
"""


# ---- release lists ----------------------------------------------------------------------------

def test_pip_index_output_is_parsed_oldest_first_in_version_order_without_prereleases():
    assert releases.parse_pip_index(PIP_INDEX_OUTPUT) == ["2023.0.2", "2023.0.10", "2024.6.0", "2026.4.0", "2026.4.1"]
    with pytest.raises(ValueError, match="Available versions"):
        releases.parse_pip_index("ERROR: No matching distribution found for openvino")


def test_release_list_comes_from_pip_once_then_from_the_cache(tmp_path):
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        return subprocess.CompletedProcess(command, 0, PIP_INDEX_OUTPUT, "")

    first = releases.available_releases(tmp_path, runner=fake_pip)
    second = releases.available_releases(tmp_path, runner=fake_pip)
    assert first == second == ["2023.0.2", "2023.0.10", "2024.6.0", "2026.4.0", "2026.4.1"]
    assert len(calls) == 1 and calls[0][-3:] == ["index", "versions", "openvino"]
    releases.available_releases(tmp_path, refresh=True, runner=fake_pip)
    assert len(calls) == 2


def test_when_pip_cannot_be_asked_an_old_list_is_used_and_without_one_the_error_says_what_to_do(tmp_path):
    (tmp_path / "releases.json").write_text(json.dumps({"fetched": 0, "releases": ["2024.6.0", "2026.4.1"]}))

    def offline(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: Could not fetch URL: connection refused")
    assert releases.available_releases(tmp_path, runner=offline) == ["2024.6.0", "2026.4.1"]
    with pytest.raises(RuntimeError, match="--releases A,B,C"):
        releases.available_releases(tmp_path / "empty", runner=offline)


def test_release_selection_by_range_and_by_list():
    listed = ["2023.3.0", "2024.0.0", "2024.6.0", "2025.4.1", "2026.4.1"]
    assert releases.select_releases("2024.0.0..2025.4.1", lambda: listed) == ["2024.0.0", "2024.6.0", "2025.4.1"]
    assert releases.select_releases("..2024.0.0", lambda: listed) == ["2023.3.0", "2024.0.0"]
    assert releases.select_releases("2025.4.1..", lambda: listed) == ["2025.4.1", "2026.4.1"]
    assert releases.select_releases(None, lambda: listed) == listed

    def no_pip():
        raise AssertionError("a list of releases must not ask pip")
    assert releases.select_releases("2026.4.1, 2023.3.0,2024.6.0", no_pip) == ["2023.3.0", "2024.6.0", "2026.4.1"]
    with pytest.raises(ValueError, match="2022.1.0 is not among"):
        releases.select_releases("2022.1.0..2026.4.1", lambda: listed)


def test_old_releases_get_numpy_1_and_new_ones_what_their_metadata_says():
    assert releases.pip_requirements("2023.3.0") == ["openvino==2023.3.0", "numpy<2"]
    assert releases.pip_requirements("2024.0.0") == ["openvino==2024.0.0", "numpy<2"]
    assert releases.pip_requirements("2024.1.0") == ["openvino==2024.1.0"]
    assert releases.pip_requirements("2026.4.1") == ["openvino==2026.4.1"]


# ---- environment cache --------------------------------------------------------------------------

class FakeInstaller:
    """Records each call; makes a directory with a bin/python, or fails for the releases named."""

    def __init__(self, failing=()):
        self.calls, self.failing = [], set(failing)

    def __call__(self, path: Path, requirements: list[str]) -> None:
        self.calls.append(requirements)
        release = requirements[0].split("==")[1]
        if release in self.failing:
            raise InstallFailed(f"ERROR: No matching distribution found for openvino=={release}")
        (path / "bin").mkdir(parents=True)
        (path / "bin" / "python").write_text("#!/bin/sh\n")


def fake_checker(path: Path) -> dict:
    return {"openvino": "9.9.9-fake", "numpy": "1.26.4"}


def test_an_environment_is_made_once_and_a_second_call_reuses_it_without_pip(tmp_path):
    installer = FakeInstaller()
    cache = EnvironmentCache(tmp_path, installer, fake_checker)
    made = cache.ensure("2023.3.0")
    assert installer.calls == [["openvino==2023.3.0", "numpy<2"]]
    assert made.path == tmp_path / "envs" / "openvino-2023.3.0" and made.python.endswith("bin/python")
    assert (made.numpy_version, made.openvino_version) == ("1.26.4", "9.9.9-fake")
    again = EnvironmentCache(tmp_path, installer, fake_checker).ensure("2023.3.0")   # a later process
    assert installer.calls == [["openvino==2023.3.0", "numpy<2"]]                    # no second install
    assert again == made
    assert [env.release for env in cache.list()] == ["2023.3.0"]
    assert not list((tmp_path / "envs").glob(".*partial*"))


def test_a_release_that_does_not_install_is_remembered_retried_on_request_and_pruned(tmp_path):
    installer = FakeInstaller(failing={"2024.2.0"})
    cache = EnvironmentCache(tmp_path, installer, fake_checker)
    with pytest.raises(InstallFailed, match="No matching distribution"):
        cache.ensure("2024.2.0")
    with pytest.raises(InstallFailed, match="remembered"):
        cache.ensure("2024.2.0")
    assert len(installer.calls) == 1 and cache.failed() == ["2024.2.0"]
    assert not cache.path("2024.2.0").exists()
    installer.failing.clear()
    assert cache.ensure("2024.2.0", retry_failed=True).release == "2024.2.0"
    assert cache.failed() == [] and len(installer.calls) == 2
    cache.ensure("2026.4.1")
    assert [path.name for path in cache.prune(["2024.2.0"])] == ["openvino-2024.2.0"]
    assert [env.release for env in cache.list()] == ["2026.4.1"]
    cache.prune()
    assert cache.list() == []


def test_a_failed_import_check_is_an_install_failure(tmp_path):
    def broken(path):
        raise InstallFailed("the environment installed but the worker's imports fail: numpy.core.multiarray failed")
    cache = EnvironmentCache(tmp_path, FakeInstaller(), broken)
    with pytest.raises(InstallFailed, match="imports fail"):
        cache.ensure("2023.3.0")
    assert cache.get("2023.3.0") is None and cache.failed() == ["2023.3.0"]


def test_the_default_installer_makes_a_venv_without_pip_and_installs_with_this_pip(tmp_path, monkeypatch):
    commands = []

    def fake_run(command, **kwargs):
        commands.append([str(part) for part in command])
        return subprocess.CompletedProcess(command, 0, "", "")
    monkeypatch.setattr(releases.subprocess, "run", fake_run)
    releases.create_environment(tmp_path / "env", releases.pip_requirements("2023.3.0"))
    venv, pip = commands
    assert venv[1:] == ["-m", "venv", "--without-pip", str(tmp_path / "env")]
    assert pip[:5] == [sys.executable, "-m", "pip", "--python", str(tmp_path / "env" / "bin" / "python")]
    assert pip[-2:] == ["openvino==2023.3.0", "numpy<2"]


def test_envs_lists_sizes_and_prunes(tmp_path, capsys):
    cache = EnvironmentCache(tmp_path, FakeInstaller(failing={"2024.2.0"}), fake_checker)
    cache.ensure("2023.3.0")
    (cache.path("2023.3.0") / "payload").write_bytes(b"x" * 100_000)
    with pytest.raises(InstallFailed):
        cache.ensure("2024.2.0")
    assert cli.main(["envs", "--cache-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "2023.3.0" in out and "numpy 1.26.4" in out and "KiB" in out
    assert "2024.2.0" in out and "not installable" in out
    assert "1 environment(s)" in out
    assert cli.main(["envs", "prune", "--cache-dir", str(tmp_path)]) == 0
    assert cache.list() == [] and cache.failed() == []


# ---- failure signatures -------------------------------------------------------------------------

def test_the_same_onednn_failure_worded_by_two_releases_has_one_signature():
    older = "compile: could not create a primitive descriptor for a deconvolution forward propagation primitive"
    newer = ("compile: could not create a primitive descriptor for the deconvolution forward propagation primitive. "
             "Run workload with environment variable ONEDNN_VERBOSE=all to get additional diagnostic information.")
    assert failure_signature("error", older) == failure_signature("error", newer)
    assert failure_signature("error", "compile: Check 'x' failed at src/plugins/intel_cpu/src/nodes/deconv.cpp:969") \
        == failure_signature("error", "compile: Check 'x' failed at src/plugins/intel_cpu/src/nodes/deconv.cpp:1004")
    assert failure_signature("error", older) != failure_signature("error", "compile: Destination memory is undefined")
    assert failure_signature("error", older) != failure_signature("error", "infer: " + older.split(": ", 1)[1])
    undefined = ["compile: Destination memory is undefined",                                              # 2024.2
                 "compile: [CPU] GroupConvolutionBackpropData node with name 'op' Destination memory is undefined",  # 2025.2
                 "compile: Check 'dstMemPtr && dstMemPtr->isDefined()' failed at src/plugins/intel_cpu/src/nodes/"
                 "deconv.cpp:969:\nGroupConvolutionBackpropData node with name 'op' Destination memory is undefined"]
    assert len({failure_signature("error", message) for message in undefined}) == 1
    assert failure_signature("error", undefined[0]) != failure_signature("error", "compile: Cannot get dims for "
                                                                                  "non static shape")
    assert failure_signature(MISMATCH) != failure_signature(MISMATCH, "output shape")
    assert failure_signature("crashed", "SIGSEGV") != failure_signature("crashed", "SIGABRT")
    assert failure_signature(PASS) == ""


# ---- bisection on fake histories ------------------------------------------------------------------

BAD_COMPILE = "error: compile: could not create primitive descriptor"


def history(*statuses: str) -> tuple[list[str], dict[str, ReleaseOutcome]]:
    """Releases r00, r01, ... with the outcomes named: pass, bad, other (another error), mismatch, skip."""
    names = [f"2024.{index}.0" for index in range(len(statuses))]
    outcomes = {}
    for name, status in zip(names, statuses):
        outcomes[name] = {
            "pass": ReleaseOutcome(name, PASS),
            "bad": ReleaseOutcome(name, "error", BAD_COMPILE, "compile: could not create ..."),
            "other": ReleaseOutcome(name, "error", "error: compile: destination memory is undefined"),
            "mismatch": ReleaseOutcome(name, MISMATCH, "mismatch"),
            "skip": ReleaseOutcome(name, NOT_INSTALLABLE, NOT_INSTALLABLE, "no such version"),
        }[status]
    return names, outcomes


class Recorder:
    """``evaluate`` for bisect: answers from a history, records what ran."""

    def __init__(self, outcomes):
        self.outcomes, self.calls = outcomes, []

    def __call__(self, release):
        assert release not in self.calls, f"{release} evaluated twice"
        self.calls.append(release)
        return self.outcomes[release]


@pytest.mark.parametrize("count", range(1, 24))
def test_bisection_finds_every_boundary_within_log2_plus_2_runs(count):
    for first_bad in range(count):
        names, outcomes = history(*(["pass"] * first_bad + ["bad"] * (count - first_bad)))
        evaluate = Recorder(outcomes)
        result = bisect(names, evaluate, "case", "CPU-f32")
        assert len(evaluate.calls) <= max_runs(count)
        assert result.first_bad == names[first_bad]
        if first_bad == 0:
            assert result.verdict == "bad-throughout" and result.last_good is None
        else:
            assert result.verdict == "found" and result.last_good == names[first_bad - 1]
            assert result.transitions == [(names[first_bad - 1], names[first_bad], GOOD, BAD)]


def test_max_runs_is_ceil_log2_plus_2():
    assert [max_runs(n) for n in (1, 2, 3, 4, 5, 8, 9, 22, 27)] == [1, 3, 4, 4, 5, 5, 6, 7, 7]


def test_newest_release_passing_means_nothing_to_bisect():
    names, outcomes = history("bad", "bad", "pass")
    evaluate = Recorder(outcomes)
    result = bisect(names, evaluate, "case", "CPU-f32")
    assert result.verdict == "newest-passes" and evaluate.calls == [names[-1]]
    assert result.first_bad is None and result.last_good is None
    assert "nothing to bisect" in result.describe()


def test_a_release_failing_differently_is_differs_not_bad():
    names, outcomes = history("pass", "pass", "other", "other", "bad", "bad", "bad", "bad")
    result = bisect(names, Recorder(outcomes), "case", "CPU-f32")
    assert result.first_bad == names[4]
    assert result.outcomes[names[3]] == DIFFERS
    assert result.last_good is None            # the release before the first bad one failed differently
    assert all(result.outcomes[name] != BAD for name in names[:4] if name in result.outcomes)
    words = result.describe()
    assert f"first bad: {names[4]}" in words and "fails differently" in words
    assert "history is not pass-then-bad" in words
    assert [(a, b) for a, b, *_ in result.transitions] == [(names[0], names[3]), (names[3], names[4])]


def test_a_mismatch_on_an_older_release_differs_from_the_newest_compile_error():
    names, outcomes = history("mismatch", "mismatch", "pass", "bad", "bad")
    result = bisect(names, Recorder(outcomes), "case", "CPU-f32")
    assert result.first_bad == names[3] and result.last_good == names[2]
    assert result.outcomes[names[0]] == DIFFERS
    transitions = [(x, y) for _, _, x, y in result.transitions]
    assert transitions == [(DIFFERS, GOOD), (GOOD, BAD)]   # non-monotonic: every change is reported


def test_a_release_that_cannot_be_installed_is_skipped_named_and_a_neighbour_runs():
    names, outcomes = history("pass", "pass", "pass", "skip", "bad", "bad", "bad")
    evaluate = Recorder(outcomes)
    result = bisect(names, evaluate, "case", "CPU-f32")
    assert names[3] in evaluate.calls                    # the middle was tried ...
    assert result.skipped == [names[3]]                 # ... named ...
    assert result.first_bad == names[4] and result.last_good == names[2]   # ... and a neighbour decided it
    assert result.outcomes[names[3]] == NOT_INSTALLABLE
    assert f"{names[3]} could not be installed" in result.describe()
    assert len(result.ran) <= max_runs(len(names))


def test_an_uninstallable_newest_release_hands_over_to_the_newest_installable_one():
    names, outcomes = history("pass", "bad", "bad", "skip")
    result = bisect(names, Recorder(outcomes), "case", "CPU-f32")
    assert result.newest == names[2] and result.first_bad == names[1] and result.last_good == names[0]
    assert result.skipped == [names[3]]


def test_an_uninstallable_gap_leaves_the_boundary_between_the_releases_that_ran():
    names, outcomes = history("pass", "skip", "skip", "bad")
    result = bisect(names, Recorder(outcomes), "case", "CPU-f32")
    assert (result.last_good, result.first_bad) == (names[0], names[3])
    assert f"not installable in between: {names[1]}, {names[2]}" in result.describe()


def test_nothing_installable():
    names, outcomes = history("skip", "skip")
    result = bisect(names, Recorder(outcomes), "case", "CPU-f32")
    assert result.verdict == "nothing-installable" and result.ran == []


def test_bisection_json_has_the_documented_shape():
    names, outcomes = history("pass", "pass", "other", "skip", "bad", "bad")
    data = json.loads(json.dumps(bisect(names, Recorder(outcomes), "a.yaml::c", "CPU-f32").to_json()))
    assert {"case", "first_bad", "last_good", "outcomes"} <= set(data)
    assert data["case"] == "a.yaml::c" and data["first_bad"] == names[4]
    assert list(data["outcomes"]) == [name for name in names if name in data["outcomes"]]   # oldest first
    assert set(data["outcomes"].values()) <= {GOOD, BAD, DIFFERS, NOT_INSTALLABLE}
    assert data["details"][names[4]]["signature"] == BAD_COMPILE


# ---- the CLI over a fake runner ------------------------------------------------------------------

@pytest.fixture
def fake_runs(monkeypatch, tmp_path):
    """ReleaseRunner.outcome answers from a per-release table instead of running OpenVINO."""
    table = {"2023.3.0": ReleaseOutcome("2023.3.0", PASS),
             "2024.6.0": ReleaseOutcome("2024.6.0", NOT_INSTALLABLE, NOT_INSTALLABLE, "pip: no wheel"),
             "2025.4.1": ReleaseOutcome("2025.4.1", "error", BAD_COMPILE, "compile: ..."),
             "2026.4.1": ReleaseOutcome("2026.4.1", "error", BAD_COMPILE, "compile: ...")}
    asked = []

    def outcome(self, case, release):
        asked.append((case.id, release))
        return table[release]
    monkeypatch.setattr(releases.ReleaseRunner, "outcome", outcome)
    monkeypatch.setattr(releases.ReleaseRunner, "release_done", lambda self, release: None)
    monkeypatch.chdir(REPO)
    monkeypatch.setenv(releases.CACHE_VARIABLE, str(tmp_path / "cache"))
    return asked


def test_bisect_json_from_the_command_line(fake_runs, capsys):
    case_id = "group_convolution_backprop_data/groups.yaml::single_group[data=1x3x5x5]"
    assert cli.main(["bisect", case_id, "--releases", "2023.3.0,2024.6.0,2025.4.1,2026.4.1", "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["case"] == case_id and data["first_bad"] == "2025.4.1" and data["last_good"] == "2023.3.0"
    assert data["outcomes"] == {"2023.3.0": "pass", "2024.6.0": "not-installable", "2025.4.1": "bad", "2026.4.1": "bad"}


def test_bisect_plain_output_says_the_same_and_what_to_do_next(fake_runs, capsys):
    case_id = "group_convolution_backprop_data/groups.yaml::single_group[data=1x3x5x5]"
    assert cli.main(["bisect", case_id, "--releases", "2023.3.0,2024.6.0,2025.4.1,2026.4.1", "-q"]) == 0
    out = capsys.readouterr().out
    assert "first bad: 2025.4.1; last good: 2023.3.0" in out
    assert "2024.6.0 could not be installed" in out
    assert "expected_failures.yaml" in out and "XPASS" in out


def test_k_selects_cases_as_pytest_does(fake_runs, capsys):
    assert cli.main(["bisect", "-k", "single_group and 1d", "--releases", "2023.3.0,2026.4.1", "--json", "-q"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["case"] == "group_convolution_backprop_data/groups.yaml::single_group_1d"
    cases = releases.select_cases([], "backprop_output_shape and not valid", Path("cases"), "CPU-f32")
    assert cases and all("backprop_output_shape.yaml" in case.id and "valid" not in case.id for case in cases)
    assert releases.select_cases([], "CPU-f32 and depthwise", Path("cases"), "CPU-f32")   # the target is in the id


def test_matrix_highlights_cells_that_changed_from_the_previous_release(fake_runs, tmp_path, capsys):
    stem = tmp_path / "report" / "releases"
    code = cli.main(["releases", "group_convolution_backprop_data/groups.yaml::single_group",
                     "--releases", "2023.3.0,2024.6.0,2025.4.1,2026.4.1", "-o", str(stem), "-q"])
    assert code == 1                                            # cells changed between releases
    data = json.loads(stem.with_suffix(".json").read_text())
    assert data["releases"] == ["2023.3.0", "2024.6.0", "2025.4.1", "2026.4.1"]
    assert len(data["cells"]) == 2
    # 2024.6.0 installed nothing: the change is 2023.3.0 -> 2025.4.1, and 2026.4.1 is unchanged.
    assert {(c["previous_release"], c["release"], c["before"], c["after"]) for c in data["changes"]} \
        == {("2023.3.0", "2025.4.1", "pass", "error")}
    markdown = stem.with_suffix(".md").read_text()
    row = next(line for line in markdown.splitlines() if "single_group[data=1x3x5x5]" in line and line.startswith("|"))
    assert row.split("|")[2:6] == [" pass ", " not-installable ", " **error ▲** ", " error "]
    assert "&#9650;" in stem.with_suffix(".html").read_text()
    assert f"- `{row.split('`')[1]}`: 2023.3.0 pass -> 2025.4.1 error ({BAD_COMPILE})" in markdown


# ---- the worker with another interpreter ------------------------------------------------------------

def test_portable_pickles_carry_no_numpy_internals_and_arrive_writable():
    arrays = {"f32": np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2], "i64": np.array([7], dtype=np.int64),
              "empty": np.zeros((0, 3), dtype=np.float64), "scalar": np.float64(2.5)}
    payload = worker._dumps(arrays, portable=True)
    assert b"multiarray" not in payload and b"numpy._core" not in payload and b"numpy.core" not in payload
    back = pickle.loads(payload)
    for name, array in arrays.items():
        np.testing.assert_array_equal(back[name], array)
        assert back[name].dtype == array.dtype
    back["f32"][0, 0] = 99.0                                   # writable, as an unpickled array is
    assert b"multiarray" in worker._dumps(arrays["f32"])     # the default pickles stay numpy's own


def modules_loaded(pool, names, python):
    """Which of ``names`` the worker for ``python`` has imported (asked with builtins only: a worker
    in another environment can import nothing of these tests)."""
    loaded = pool.call(eval, "sorted(__import__('sys').modules)", python=python)
    return sorted(name for name in names if name in loaded)


@pytest.fixture(scope="module")
def second_interpreter(tmp_path_factory):
    """A venv over this Python with its packages: another interpreter path, the same OpenVINO."""
    path = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", "--system-site-packages", str(path)], check=True)
    return str(path / "bin" / "python")


def test_a_worker_with_another_interpreter_runs_a_case_like_the_parent_and_imports_no_harness_extras(
        second_interpreter, tmp_path):
    pool = worker.WorkerPool()
    try:
        assert modules_loaded(pool, ["torch", "yaml", "lxml", "conformance.render", "conformance.case", "openvino",
                                     "conformance.runtime"], second_interpreter) == ["conformance.runtime", "openvino"]
        assert pool.call(os.getenv, worker.PORTABLE_VARIABLE, python=second_interpreter) == "1"
        assert pool.call(eval, "__import__('sys').executable", python=second_interpreter) == second_interpreter
        case = cli.select("group_convolution/depthwise.yaml::mobilenet_v2_dw3x3[strides=2x2-auto_pad=same_upper]",
                          REPO / "cases", None)[0]
        steps = api.prepare(case)
        ir = api.render(case, steps[0].inputs, tmp_path)
        here = api.run(ir, steps[0].inputs.data, Target())
        there = pool.run(ir, steps[0].inputs.data, Target(), python=second_interpreter)
        np.testing.assert_array_equal(there.output, here.output)
        assert there.output.flags.writeable and there.openvino_version == here.openvino_version
        assert [stat["python"] for stat in pool.stats()["workers"]] == [second_interpreter]
        assert pool.close_python(second_interpreter) == 1 and pool.stats()["workers"] == []
    finally:
        pool.shutdown()


def test_openvinos_error_in_another_interpreter_reaches_api_check_as_in_process(second_interpreter, tmp_path):
    [case] = cli.select("group_convolution_backprop_data/groups.yaml::single_group[data=1x3x5x5]", REPO / "cases", None)
    with pytest.raises(api.RuntimeRejected) as here:
        api.check(case, Target(), tmp_path)
    try:
        with pytest.raises(api.RuntimeRejected) as there:
            api.check(case, Target(), tmp_path, python=second_interpreter)
    finally:
        worker.pool().close_python(second_interpreter)
    assert (there.value.stage, there.value.message) == (here.value.stage, here.value.message)
    assert "worker (pid" in str(there.value.__cause__)


# ---- a real release environment (opt in: downloads OpenVINO wheels) -----------------------------------

RELEASES_UNDER_TEST = os.environ.get("OV_CONFORMANCE_RELEASE_TEST", "")


@pytest.mark.skipif(not RELEASES_UNDER_TEST, reason="set OV_CONFORMANCE_RELEASE_TEST=2023.3.0,2024.6.0 (releases to "
                                                    "install in the release cache, ~200 MB each) to run")
def test_real_release_environments_run_cases_end_to_end(tmp_path):
    cache = EnvironmentCache(releases.cache_root())
    target = Target()
    runner = releases.ReleaseRunner(cache, target, tmp_path / "ir")
    depthwise = cli.select("group_convolution/depthwise.yaml::mobilenet_v2_dw3x3[strides=2x2-auto_pad=same_upper]",
                           REPO / "cases", None)[0]
    for release in [part.strip() for part in RELEASES_UNDER_TEST.split(",") if part.strip()]:
        environment = cache.ensure(release)
        assert environment.openvino_version.startswith(release)
        if releases.release_key(release) < releases.release_key("2024.1.0"):
            assert environment.numpy_version.startswith("1.")
        outcome = runner.outcome(depthwise, release)
        assert (outcome.status, outcome.openvino_version.split("-")[0]) == (PASS, release), outcome.detail
        assert modules_loaded(worker.pool(), ["torch", "yaml", "lxml", "numpy"], environment.python) == ["numpy"]
        runner.release_done(release)


@pytest.mark.parametrize("oldest_digest, words", [("aa", "bit-identical output to 2026.4.1's"),
                                                   ("bb", "another output than 2026.4.1's")])
def test_a_mismatch_says_whether_its_output_is_bit_identical_to_the_newest_releases(oldest_digest, words):
    names = ["2023.0.0", "2024.0.0", "2026.4.1"]
    outcomes = {names[0]: ReleaseOutcome(names[0], MISMATCH, "mismatch", output_digest=oldest_digest),
                names[2]: ReleaseOutcome(names[2], MISMATCH, "mismatch", output_digest="aa")}
    result = bisect(names, Recorder(outcomes), "case", "CPU-f32")
    assert result.verdict == "bad-throughout"
    line = next(line for line in result.describe().splitlines() if line.strip().startswith(names[0]))
    assert line.endswith(f"mismatch ({words})")


def test_output_digest_depends_on_bits_and_shape():
    array = np.arange(6, dtype=np.float32)
    assert releases.output_digest([array]) == releases.output_digest([array.copy()])
    assert releases.output_digest([array]) != releases.output_digest([array.reshape(2, 3)])
    changed = array.copy()
    changed[5] = np.nextafter(changed[5], np.float32(10))
    assert releases.output_digest([array]) != releases.output_digest([changed])


def test_cases_can_be_named_by_directory_file_or_id():
    cases_root = REPO / "cases"
    directory = releases.select_cases(["spec_notes"], None, cases_root, "CPU-f32")
    assert directory and all(case.id.startswith("spec_notes/") for case in directory)
    one_file = releases.select_cases(["spec_notes/backprop_output_shape.yaml"], None, cases_root, "CPU-f32")
    assert {case.id for case in one_file} < {case.id for case in directory}
    [one] = releases.select_cases(["spec_notes/backprop_output_shape.yaml::valid_total_2"], None, cases_root, "CPU-f32")
    assert one.id == "spec_notes/backprop_output_shape.yaml::valid_total_2"
