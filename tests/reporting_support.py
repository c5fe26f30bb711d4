"""Shared set-up for the tests that run the plugin on a temporary project (pytester or a subprocess).

``corrupt`` adds a conftest that perturbs one output element of the cases whose
name contains ``broken``: a real failure that does not depend on which
deviations the installed OpenVINO has (the deviation tests live with the cases).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from conformance.settings import CPU_THREADS_VARIABLE

REPO_ROOT = Path(__file__).resolve().parent.parent

CASES = """\
op: GroupConvolution
cases:
  - name: ok_a
    data: [1, 4, 5, 5]
    kernel: [2, 3, 2, 3, 3]
    pads_begin: [1, 1]
    pads_end: [1, 1]
    sweep:
      strides: [[1, 1], [2, 2]]
  - name: broken_b
    data: [1, 2, 6]
    kernel: [2, 1, 1, 3]
"""

BACKPROP = """\
op: GroupConvolutionBackpropData
cases:
  - name: ok_c
    data: [1, 2, 4]
    kernel: [2, 1, 2, 3]
    strides: 2
  - name: uniform_d
    data: [1, 4, 3, 3]
    kernel: [2, 2, 1, 2, 2]
    fill: uniform
    seed: 7
"""

CORRUPT = """\
import dataclasses
import conformance.api as api

_original = api.run


def _corrupting_run(ir, data, target, *args, **kwargs):
    result = _original(ir, data, target, *args, **kwargs)
    if "broken" in ir.xml_path.read_text():
        output = result.output.copy()
        output.flat[0] += 1.0
        return dataclasses.replace(result, output=output)
    return result


def pytest_configure(config):
    api.run = _corrupting_run


def pytest_unconfigure(config):
    api.run = _original
"""


def in_process_project(pytester) -> Path:
    """A pytester project (pyproject.toml, empty ``cases/``, returned) whose runs stay in the pytest
    process (``--no-isolate``: isolation is the default), so that a conftest patching ``conformance`` applies;
    one model per case (``--batch-size 1``), so that a conftest faking the per-case runtime (``api.run``)
    sees every item (tests/test_batch.py covers batches)."""
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\ntestpaths = ["cases"]\n'
                                         'addopts = "-p no:cacheprovider --no-isolate --batch-size 1"\n')
    return pytester.mkdir("cases")


def make_suite(pytester, corrupt: bool = False) -> None:
    """Two case files (5 items on CPU-f32), optionally with the ``broken_b`` case failing (in-process runs)."""
    cases = in_process_project(pytester)
    (cases / "conv.yaml").write_text(CASES)
    (cases / "backprop.yaml").write_text(BACKPROP)
    if corrupt:
        pytester.makeconftest(CORRUPT)


# Two GroupConvolution cases of 8 channels (depthwise and grouped): small, and fast on every device.
SMALL_CASES = """
op: GroupConvolution
cases:
  - name: dw
    data: [1, 8, 6, 6]
    kernel: [8, 1, 1, 3, 3]
    pads_begin: [1, 1]
    pads_end: [1, 1]
  - name: grouped
    data: [1, 8, 6, 6]
    kernel: [2, 4, 4, 3, 3]
    fill: uniform
"""

PROJECT_INI = "[pytest]\nconformance_cases = cases\ntestpaths = cases\n"


def checkout_pythonpath() -> str:
    """PYTHONPATH for a subprocess that must import this checkout's ``conformance``, not the installed one."""
    path = os.environ.get("PYTHONPATH", "")
    return os.pathsep.join([str(REPO_ROOT)] + ([path] if path else []))


# What an xdist worker running these tests has in its environment. A pytest run started from it is a
# run of its own: with them, its controller would take itself for a worker and share out the cores.
OUTER_RUN_VARIABLES = ("PYTEST_XDIST_WORKER", "PYTEST_XDIST_WORKER_COUNT", "PYTEST_XDIST_TESTRUNUID",
                       CPU_THREADS_VARIABLE)


def subprocess_env(monkeypatch) -> None:
    """Subprocess runs must import this checkout's ``conformance``, not the installed one, and be runs
    of their own when these tests run under xdist (``OUTER_RUN_VARIABLES`` removed)."""
    monkeypatch.setenv("PYTHONPATH", checkout_pythonpath())
    for name in OUTER_RUN_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def write_project(root: Path, cases: dict[str, str], ini_extra: str = "") -> Path:
    """A project at ``root``: pytest.ini pointing the plugin at ./cases (plus ``ini_extra`` lines),
    and the given case files (name -> YAML text) in it. Returns the cases directory."""
    (root / "pytest.ini").write_text(PROJECT_INI + ini_extra)
    directory = root / "cases"
    directory.mkdir(exist_ok=True)
    for name, text in cases.items():
        (directory / name).write_text(text)
    return directory


def subprocess_project(pytester, monkeypatch, cases: dict[str, str], ini_extra: str = "") -> Path:
    """``write_project`` in pytester's directory, for ``pytester.runpytest_subprocess``: an in-process
    run would unload openvino's native modules afterwards."""
    subprocess_env(monkeypatch)
    return write_project(pytester.path, cases, ini_extra)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
