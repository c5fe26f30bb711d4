"""One background thread that makes a session's OpenVINO calls, in the order they are asked for.

OpenVINO's ``compile_model`` and ``infer`` release the GIL, and on two cores a serial run leaves
one idle while it compiles. ``api.RunSession`` hands every runtime-stage call to its ``Lane``: what
an item needs now it waits for (``call``); what the items after it will need (their batch, the
per-case re-run of a member failing inside a batch, the per-group check of a failing item) it
submits ahead (``submit``) and keeps working on oracles and comparisons meanwhile.

One thread, so OpenVINO calls never run concurrently with each other: the compiled-model cache,
the worker pool and every thread count stay as they are without a lane; only the main thread's
Python work overlaps them. Results do not depend on the timing: every call is deterministic, and
a caller gets exactly what the same call would return (or raise) on its own thread.
"""
from __future__ import annotations

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, Callable


class Lane:
    """A one-thread executor for OpenVINO calls (see the module docstring)."""

    def __init__(self):
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="conformance-openvino")
        self._thread: int | None = None

    def _enter(self, function: Callable, args: tuple, kwargs: dict):
        self._thread = threading.get_ident()
        return function(*args, **kwargs)

    def submit(self, function: Callable, *args, **kwargs) -> Future:
        """Run ``function(*args, **kwargs)`` on the lane after what was submitted before."""
        return self._executor.submit(self._enter, function, args, kwargs)

    def call(self, function: Callable, *args, **kwargs) -> Any:
        """``function(*args, **kwargs)`` on the lane, waited for: its value, or its exception
        re-raised. Called from the lane itself (a submitted job calling back), it runs inline."""
        if threading.get_ident() == self._thread:
            return function(*args, **kwargs)
        return self.submit(function, *args, **kwargs).result()

    def close(self) -> None:
        """Drop what has not started (items that will not run: -x, an interrupted session) and wait
        for the call in progress."""
        self._executor.shutdown(wait=True, cancel_futures=True)
