"""The oracle runs small convolutions on one torch thread and restores torch's setting after."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from conformance import api, ops, oracle, taps
from conformance.inputs import Inputs

CASE = """
op: GroupConvolution
cases:
  - name: small
    data: [1, 4, 6, 6]
    kernel: [2, 2, 2, 3, 3]
    strides: [1, 1]
    dilations: [1, 1]
    pads_begin: [1, 1]
    pads_end: [1, 1]
    auto_pad: explicit
"""


@pytest.fixture
def two_threads():
    previous = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(previous)


def _threads_seen(monkeypatch, case) -> list[int]:
    """torch's thread count inside the op's window while the oracle computes ``case``."""
    drawn = api.make_inputs(case)   # its redraw check convolves too: before the spy
    inputs = Inputs(drawn.data, drawn.kernel)   # without the draw's op output: the oracle computes both
    seen = []
    op = ops.get(case.op)
    window = type(op).window

    def spy(self, *args, **kwargs):
        seen.append(torch.get_num_threads())
        return window(self, *args, **kwargs)
    monkeypatch.setattr(type(op), "window", spy)
    oracle.reference(case, inputs)
    return seen


def test_small_convolutions_run_on_one_thread_and_restore_it(monkeypatch, two_threads):
    case = api.load_cases_text(CASE, "threads.yaml")[0]
    assert _threads_seen(monkeypatch, case) == [1, 1]   # output and magnitude
    assert torch.get_num_threads() == 2


def test_large_work_keeps_torchs_threads(monkeypatch, two_threads):
    case = api.load_cases_text(CASE, "threads.yaml")[0]
    monkeypatch.setattr(taps, "ONE_THREAD_WORK", 0)
    assert _threads_seen(monkeypatch, case) == [2, 2]


def test_one_thread_gives_the_same_reference(two_threads, monkeypatch):
    case = api.load_cases_text(CASE, "threads.yaml")[0]
    inputs = api.make_inputs(case)
    one = oracle.reference(case, inputs)
    monkeypatch.setattr(taps, "ONE_THREAD_WORK", 0)
    two = oracle.reference(case, inputs)
    assert np.array_equal(one.output, two.output) and np.array_equal(one.magnitude, two.magnitude)


def _mkldnn_seen(monkeypatch, case) -> list[bool]:
    """Whether torch's oneDNN convolutions were on inside the op's window while the oracle computes ``case``."""
    drawn = api.make_inputs(case)
    inputs = Inputs(drawn.data, drawn.kernel)
    seen = []
    op = ops.get(case.op)
    window = type(op).window

    def spy(self, *args, **kwargs):
        seen.append(torch.backends.mkldnn.enabled)
        return window(self, *args, **kwargs)
    monkeypatch.setattr(type(op), "window", spy)
    oracle.reference(case, inputs)
    return seen


def test_small_convolutions_run_on_torchs_native_kernels_and_restore_onednn(monkeypatch):
    case = api.load_cases_text(CASE, "threads.yaml")[0]
    assert torch.backends.mkldnn.enabled
    assert _mkldnn_seen(monkeypatch, case) == [False, False]   # output and magnitude
    assert torch.backends.mkldnn.enabled
    monkeypatch.setattr(taps, "NATIVE_CONVOLUTION_WORK", 0)
    assert _mkldnn_seen(monkeypatch, case) == [True, True]


def test_native_kernels_give_the_same_reference(monkeypatch):
    """The oracle's float32 is exact, so any algorithm gives the same bits; oneDNN has no float64."""
    for fill in ("integers", "uniform"):
        case = api.load_cases_text(CASE.replace("auto_pad: explicit", f"auto_pad: explicit\n    fill: {fill}"),
                                   "threads.yaml")[0]
        inputs = api.make_inputs(case)
        native = oracle.reference(case, Inputs(inputs.data, inputs.kernel))
        monkeypatch.setattr(taps, "NATIVE_CONVOLUTION_WORK", -1)
        onednn = oracle.reference(case, Inputs(inputs.data, inputs.kernel))
        monkeypatch.undo()
        assert native.output.dtype == onednn.output.dtype
        assert np.array_equal(native.output, onednn.output) and np.array_equal(native.magnitude, onednn.magnitude)
