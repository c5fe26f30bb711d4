"""The README's authoring sections are executable: the three styles render identical IR and the
Python API example runs as written."""
from __future__ import annotations

import re
from pathlib import Path

from conformance import api
from conformance.render import render_bytes

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text(encoding="utf-8")


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end != -1 else None]


def test_the_three_styles_in_the_readme_render_identical_ir():
    blocks = re.findall(r"```yaml\n(.*?)```", section("Writing cases"), re.DOTALL)
    assert len(blocks) == 3
    rendered = []
    for text in blocks:
        [case] = api.load_cases_text(text, "readme.yaml")
        rendered.append(render_bytes(case, api.make_inputs(case)))
    assert rendered[0] == rendered[1] == rendered[2]
    styles = [api.load_cases_text(text, "readme.yaml")[0].style for text in blocks]
    assert styles == ["spec", "pytorch", "matlab"]


def test_the_python_api_example_runs(tmp_path, monkeypatch, capsys):
    [code] = re.findall(r"```python\n(.*?)```", section("Python API"), re.DOTALL)
    monkeypatch.chdir(tmp_path)  # it writes .conformance/ir and out/ under the working directory
    code = code.replace('"cases', f'"{REPO}/cases')
    namespace: dict = {}
    exec(compile(code, "README.md#python-api", "exec"), namespace)
    assert namespace["outcome"].verdict.passed
    assert (tmp_path / "out").is_dir() and any((tmp_path / ".conformance" / "ir").glob("*.xml"))
    assert namespace["problems"] == [] and namespace["found"]
    assert "benchmark_app -m out/" in capsys.readouterr().out
