"""The spec's full-size 3D examples end to end (streamed oracle), marked slow.

Run with ``--runslow`` (``tox -e slow``): ~1-3 min and up to ~12 GB of memory
(OpenVINO's own peak for the BackpropData example is ~10.5 GB). Speed and
memory figures are measured by benchmarks/run.py, not asserted here.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "benchmarks"))
from run import FULL_SIZE  # noqa: E402  (the benchmark's copy of the examples)

from conformance import api  # noqa: E402


@pytest.mark.slow
@pytest.mark.parametrize("example", sorted(FULL_SIZE))
def test_spec_example_3d_streams_and_passes(example, tmp_path):
    case = api.load_cases_text(FULL_SIZE[example], f"{example}.yaml", memory_budget=None)[0]
    assert api.streamed(case)
    lines: list[str] = []
    outcome = api.check(case, api.Target("CPU", "f32"), tmp_path, progress=lines.append)
    assert outcome.streamed and outcome.reference is None
    assert outcome.verdict.total == outcome.run.output.size
    assert outcome.verdict.passed, outcome.verdict.describe()
    assert len(lines) > 1 and "100%" in lines[-1]
