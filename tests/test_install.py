"""Every documented install path gets torch's CPU wheel: PyPI's Linux torch==2.13.0 is the CUDA build.

pyproject.toml cannot choose an index, so each path must install requirements-torch-cpu.txt
(which names PyTorch's CPU index) before the package.
"""
from __future__ import annotations

import re

from reporting_support import REPO_ROOT

CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def test_the_requirements_file_names_the_cpu_index_and_pyprojects_torch_pin():
    lines = [line.strip() for line in (REPO_ROOT / "requirements-torch-cpu.txt").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    pins = re.findall(r'"(torch\s*==[^"]*)"', (REPO_ROOT / "pyproject.toml").read_text())
    assert lines == [f"--extra-index-url {CPU_INDEX}", *pins] and pins == ["torch==2.13.0"]


def _before_package(text: str, where: str) -> None:
    """Every package install in ``text`` comes after an install of the torch requirements."""
    installs = [match.start() for match in re.finditer(r"pip install (?:--quiet )?-e \.", text)]
    torch = [match.start() for match in re.finditer(r"pip install (?:--quiet )?-r requirements-torch-cpu\.txt", text)]
    assert installs, f"{where}: no package install found"
    for position in installs:
        assert any(start < position for start in torch), f"{where}: installs the package before torch's CPU wheel"


def test_readme_ci_script_and_workflow_install_torch_from_the_cpu_index_first():
    _before_package((REPO_ROOT / "README.md").read_text().replace('-e ".[test]"', "-e .[test]"), "README.md")
    _before_package((REPO_ROOT / ".ci" / "run").read_text().replace('-e ".[test]"', "-e .[test]"), ".ci/run")
    workflow = (REPO_ROOT / ".github" / "workflows" / "conformance.yml").read_text()
    _before_package(workflow.replace('-e ".[test]"', "-e .[test]"), "the workflow")
    assert workflow.count("-r requirements-torch-cpu.txt") == workflow.count("pip install -e")


def test_tox_installs_the_torch_requirements_as_deps():
    tox = (REPO_ROOT / "tox.ini").read_text()
    section = tox[tox.index("[testenv]"):].split("\n[", 1)[0]
    assert "deps = -r requirements-torch-cpu.txt" in section
