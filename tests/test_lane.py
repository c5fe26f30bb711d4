"""The session's lane: one background thread for OpenVINO calls (conformance/lane.py)."""
from __future__ import annotations

import threading
import time

import pytest

from conformance.lane import Lane


def test_calls_run_on_one_thread_in_order_and_return_or_raise_as_they_would():
    lane = Lane()
    seen = []
    futures = [lane.submit(lambda n=n: seen.append((n, threading.get_ident())) or n) for n in range(5)]
    assert [future.result() for future in futures] == list(range(5))
    assert [n for n, _ in seen] == list(range(5)) and len({thread for _, thread in seen}) == 1
    assert seen[0][1] != threading.get_ident()
    with pytest.raises(ZeroDivisionError):
        lane.call(lambda: 1 / 0)
    lane.close()


def test_a_job_calling_back_into_the_lane_runs_inline_instead_of_waiting_for_itself():
    lane = Lane()
    assert lane.submit(lambda: lane.call(lambda: threading.get_ident())).result(timeout=10) \
        == lane.call(threading.get_ident)
    lane.close()


def test_close_drops_jobs_not_started_and_waits_for_the_running_one():
    lane = Lane()
    started, ran = threading.Event(), []
    running = lane.submit(lambda: (started.set(), time.sleep(0.2), ran.append("first")))
    waiting = lane.submit(lambda: ran.append("second"))
    started.wait(10)
    lane.close()
    assert running.done() and waiting.cancelled() and ran == ["first"]
