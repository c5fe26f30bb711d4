"""Shared set-up for the reporting tests: a small case tree for pytester runs.

``corrupt`` adds a conftest that perturbs one output element of the cases whose
name contains ``broken``: a real failure that does not depend on which
deviations the installed OpenVINO has (the deviation tests live with the cases).
"""
from __future__ import annotations

import json
import os
from pathlib import Path


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


def make_suite(pytester, corrupt: bool = False) -> None:
    """Two case files (5 items on CPU-f32), optionally with the ``broken_b`` case failing.

    Runs are in-process (``--no-isolate``, also under CI=true) so the corrupting conftest applies.
    """
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\ntestpaths = ["cases"]\n'
                                         'addopts = "-p no:cacheprovider --no-isolate"\n')
    cases = pytester.mkdir("cases")
    (cases / "conv.yaml").write_text(CASES)
    (cases / "backprop.yaml").write_text(BACKPROP)
    if corrupt:
        pytester.makeconftest(CORRUPT)


def subprocess_env(monkeypatch) -> None:
    """Subprocess runs must import this checkout's ``conformance``, not the installed one."""
    path = os.environ.get("PYTHONPATH", "")
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(REPO_ROOT)] + ([path] if path else [])))


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))
