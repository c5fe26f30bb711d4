"""The worker pool: results equal in-process runs; crashes and hangs cost one job, not the session."""
from __future__ import annotations

import ctypes
import os
import tempfile
import time

import numpy as np
import pytest

from conformance import api, runtime
from conformance.worker import CRASHED, HUNG, SHARED_FILE_BYTES, WorkerFailure, WorkerPool, needs_worker

CASE = """
op: GroupConvolution
cases:
  - name: small
    data: [1, 4, 6, 6]
    kernel: [2, 3, 2, 3, 3]
    strides: [1, 1]
    pads_begin: [1, 1]
    pads_end: [1, 1]
    dilations: [1, 1]
"""


# Every test of a pool runs with workers started as interpreters and with workers forked from a
# zygote (WorkerPool(fork_from_zygotes=True), what ov-conformance fuzz uses): the same behaviour.
START_KINDS = pytest.mark.parametrize("forked", [False, True], ids=["started", "forked"])


@pytest.fixture(scope="module", params=[False, True], ids=["started", "forked"])
def pool(request):
    workers = WorkerPool(fork_from_zygotes=request.param)
    yield workers
    workers.shutdown()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    case = api.load_cases_text(CASE)[0]
    inputs = api.make_inputs(case)
    return api.render(case, inputs, tmp_path_factory.mktemp("ir")), inputs


def test_worker_result_equals_in_process_run(pool, rendered):
    ir, inputs = rendered
    target = runtime.Target("CPU", "f32")
    here = runtime.run(ir, inputs.data, target)
    there = pool.run(ir, inputs.data, target)
    assert isinstance(there, runtime.RunResult)
    np.testing.assert_array_equal(there.output, here.output)
    assert there.primitive_type == here.primitive_type and there.primitive_type is not None


def test_isa_cap_reaches_the_worker_and_changes_the_kernel(pool, rendered):
    ir, inputs = rendered
    target = runtime.Target("CPU", "f32", isa="sse41")
    assert needs_worker(target) and not needs_worker(runtime.Target("CPU", "f32"))
    assert target.id == "CPU-f32-sse41"
    assert pool.call(os.getenv, "ONEDNN_MAX_CPU_ISA", env=target.environment()) == "SSE41"
    capped = pool.run(ir, inputs.data, target)
    uncapped = pool.run(ir, inputs.data, runtime.Target("CPU", "f32"))
    assert "avx" not in capped.primitive_type, capped.primitive_type     # e.g. jit_gemm_f32, jit_sse42_dw_f32
    np.testing.assert_array_equal(capped.output, uncapped.output)        # integer inputs: exact either way


def test_exceptions_in_the_job_are_raised_in_the_parent(pool, rendered):
    ir, inputs = rendered
    with pytest.raises(ValueError) as raised:
        pool.call(int, "not a number")
    assert "in the worker" in str(raised.value.__cause__) and "ValueError" in str(raised.value.__cause__)
    with pytest.raises(runtime.TargetUnavailable):
        pool.run(ir, inputs.data, runtime.Target("NO_SUCH_DEVICE", "f32"))
    assert pool.call(int, "7") == 7  # the same worker carries on


def test_segfault_is_crashed_and_the_next_job_runs(pool, rendered):
    ir, inputs = rendered
    before = pool.call(os.getpid)
    pool.call(os.write, 2, b"marker before the crash\n")
    failure = pool.call(ctypes.string_at, 0)   # reads address 0: a real SIGSEGV in the worker
    assert isinstance(failure, WorkerFailure)
    assert failure.status == CRASHED
    assert failure.signal_name == "SIGSEGV" and failure.exit_code == -11
    assert "marker before the crash" in failure.stderr_tail
    assert "Segmentation fault" in failure.stderr_tail    # faulthandler's report
    assert "SIGSEGV" in failure.describe()
    after = pool.call(os.getpid)
    assert after != before                                 # a fresh worker
    assert isinstance(pool.run(ir, inputs.data, runtime.Target("CPU", "f32")), runtime.RunResult)


def test_abort_is_crashed(pool):
    failure = pool.call(os.abort)
    assert failure.status == CRASHED and failure.signal_name == "SIGABRT"
    assert pool.call(int, "1") == 1


def test_exit_is_crashed_with_the_exit_code(pool):
    failure = pool.call(os._exit, 7)
    assert failure.status == CRASHED and failure.exit_code == 7 and "code 7" in failure.detail


def test_hang_is_killed_after_the_timeout_and_the_next_job_runs(pool, rendered):
    ir, inputs = rendered
    before = pool.call(os.getpid)
    started = time.perf_counter()
    failure = pool.call(time.sleep, 60, timeout=1.0)
    elapsed = time.perf_counter() - started
    assert isinstance(failure, WorkerFailure) and failure.status == HUNG
    assert 1.0 <= elapsed < 10.0
    assert "1 s" in failure.detail
    with pytest.raises(ProcessLookupError):
        os.kill(before, 0)                                 # the hung worker is gone
    result = pool.run(ir, inputs.data, runtime.Target("CPU", "f32"))
    assert isinstance(result, runtime.RunResult)


def test_large_arrays_travel_through_mapped_files_both_ways(pool):
    def shared_files():
        return {path for directory in ("/dev/shm", tempfile.gettempdir()) if os.path.isdir(directory)
                for path in os.listdir(directory) if path.startswith("ov-conformance-array-")}

    before = shared_files()
    large = np.arange(SHARED_FILE_BYTES // 8 + 1000, dtype=np.float64)      # just above the threshold
    assert pool.call(np.sum, large) == large.sum()                          # parent -> worker
    returned = pool.call(np.arange, large.size, None, None, np.float64)     # worker -> parent
    assert isinstance(returned, np.memmap) and returned.flags.writeable
    np.testing.assert_array_equal(returned, large)
    returned[0] = -1.0                                                      # copy-on-write: allowed, private
    assert shared_files() <= before                                         # unlinked once mapped


def test_a_changed_parent_environment_gets_a_fresh_worker(pool, monkeypatch):
    before = pool.call(os.getpid)
    monkeypatch.setenv("CONFORMANCE_TEST_MARKER", "1")   # e.g. PYTHONPATH changed by a test
    assert pool.call(os.getenv, "CONFORMANCE_TEST_MARKER") == "1"
    assert pool.call(os.getpid) != before


def test_the_per_test_variable_pytest_sets_keeps_the_worker(pool, monkeypatch):
    # pytest sets PYTEST_CURRENT_TEST around every test: keying on it started a worker per item.
    before = pool.call(os.getpid)
    spawned = pool.stats()["spawned"]
    for name in ("tests/a.yaml::one (call)", "tests/a.yaml::two (call)"):
        monkeypatch.setenv("PYTEST_CURRENT_TEST", name)
        assert pool.call(os.getpid) == before
    assert pool.stats()["spawned"] == spawned


@START_KINDS
def test_shutdown_stops_every_worker(rendered, forked):
    workers = WorkerPool(fork_from_zygotes=forked)
    pids = [workers.call(os.getpid), workers.call(os.getpid, env={"ONEDNN_MAX_CPU_ISA": "AVX2"})]
    assert len(set(pids)) == 2 and workers.stats()["spawned"] == 2
    zygotes = [zygote.process.pid for zygote in workers._zygotes.values()]
    assert len(zygotes) == (2 if forked else 0)   # one per environment
    workers.shutdown()
    for pid in pids + zygotes:
        with pytest.raises((ProcessLookupError, ChildProcessError)):
            os.kill(pid, 0)


def test_a_forked_worker_is_the_zygotes_child_and_replacing_it_is_a_fork():
    workers = WorkerPool(fork_from_zygotes=True)
    try:
        first = workers.call(os.getpid)
        (zygote,) = workers._zygotes.values()
        assert workers.call(os.getppid) == zygote.process.pid
        assert workers.call(os._exit, 9).exit_code == 9
        assert workers.call(os.getpid) != first and workers.call(os.getppid) == zygote.process.pid
        assert workers.stats()["spawned"] == 2 and list(workers._zygotes.values()) == [zygote]
    finally:
        workers.shutdown()


@START_KINDS
def test_a_prestarted_worker_serves_the_first_job_and_shutdown_stops_an_unused_one(forked):
    workers = WorkerPool(fork_from_zygotes=forked)
    workers.prestart()
    (starting,) = workers._starting.values()
    assert workers.call(os.getpid) == starting.process.pid and workers.stats()["spawned"] == 1
    workers.prestart()   # it exists: nothing new
    assert workers.stats()["spawned"] == 1
    workers.prestart(env={"ONEDNN_MAX_CPU_ISA": "AVX2"})   # never used
    (unused,) = workers._starting.values()
    workers.shutdown()
    assert unused.process.poll() is not None and starting.process.poll() is not None


def test_api_check_runs_isa_capped_targets_in_a_worker(tmp_path):
    case = api.load_cases_text(CASE)[0]
    outcome = api.check(case, runtime.Target("CPU", "f32", isa="avx2"), tmp_path)
    assert outcome.verdict.passed and outcome.run.target_id == "CPU-f32-avx2"
    assert "avx512" not in outcome.run.primitive_type
    isolated = api.check(case, runtime.Target("CPU", "f32"), tmp_path, isolate=True)
    assert isolated.verdict.passed


def test_a_zygote_started_here_serves_the_pool_of_a_process_that_adopts_it(tmp_path):
    """``start_zygote`` + ``WorkerPool.adopt_zygote`` (what fuzz --jobs does across its fork): the adopting
    pool forks its workers from that zygote, and an adopted zygote is not this process's to wait for."""
    from conformance import worker
    zygote = worker.start_zygote()
    workers = WorkerPool()
    try:
        workers.adopt_zygote(zygote)
        assert workers.fork_from_zygotes and zygote.alive
        assert workers.call(os.getppid) == zygote.process.pid
        assert workers.call(os._exit, 4).exit_code == 4           # a replacement comes from it too
        assert workers.call(os.getppid) == zygote.process.pid
    finally:
        workers.shutdown()                                       # closes its channel: the zygote exits
    zygote.wait()
    assert zygote.process.returncode == 0
