"""ov-conformance: validate / list / render / new, through cli.main (the console script's entry)."""
from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import openvino as ov
import pytest

from conformance import api, cli

REPO = Path(__file__).resolve().parents[1]
CASES = REPO / "cases"


@pytest.fixture(autouse=True)
def in_repo(monkeypatch):
    monkeypatch.chdir(REPO)  # ids are relative to ./cases, as in pytest


def test_validate_passes_on_the_shipped_cases(capsys):
    assert cli.main(["validate", "cases"]) == 0
    _, err = capsys.readouterr()
    assert err.startswith(f"ok: {len(api.load_cases('cases'))} case(s)")


def test_list_prints_the_same_ids_the_api_and_plugin_use(capsys):
    assert cli.main(["list", "cases"]) == 0
    out, _ = capsys.readouterr()
    assert out.split() == [case.id for case in api.load_cases("cases")]
    file = next(CASES.rglob("*.yaml"))
    assert cli.main(["list", str(file)]) == 0
    ids = capsys.readouterr()[0].split()
    assert ids and all(i.startswith(file.relative_to(CASES).as_posix() + "::") for i in ids)


def test_render_writes_ir_inputs_expected_and_a_benchmark_app_line(tmp_path, capsys):
    case = next(c for c in api.load_cases("cases") if c.sweep)  # a swept case: select one combination
    relative_id = case.id
    assert cli.main(["render", relative_id, "-o", str(tmp_path)]) == 0
    out, _ = capsys.readouterr()
    [command] = [line for line in out.splitlines() if line.startswith("benchmark_app ")]
    stem = api.file_stem(case)
    xml, data, expected = (tmp_path / f"{stem}.xml", tmp_path / f"{stem}.data.npy", tmp_path / f"{stem}.expected.npy")
    assert f"-m {xml} -i data:{data} -d CPU -infer_precision f32" in command
    # What benchmark_app would load: the IR reads, runs on the .npy input, and gives the expected output.
    compiled = ov.Core().compile_model(ov.Core().read_model(str(xml)), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
    output = compiled({"data": np.load(data)})[0]
    np.testing.assert_allclose(output, np.load(expected), rtol=0, atol=1e-3)
    assert np.load(expected).dtype == np.float64


def test_render_selects_every_combination_without_the_sweep_part(tmp_path, capsys):
    case = next(c for c in api.load_cases("cases") if c.sweep)
    base = case.id.split("[", 1)[0]
    combinations = [c for c in api.load_cases("cases") if c.id.split("[", 1)[0] == base]
    assert cli.main(["render", base, "-o", str(tmp_path)]) == 0
    assert len(list(tmp_path.glob("*.xml"))) == len(combinations) > 1


def test_render_reports_an_unknown_case_and_a_bad_file(tmp_path, capsys):
    file = next(CASES.rglob("*.yaml")).relative_to(CASES).as_posix()
    assert cli.main(["render", f"{file}::no_such_case", "-o", str(tmp_path)]) == 1
    assert "no case 'no_such_case' in this file (it has: " in capsys.readouterr()[1]
    bad = REPO / "tests" / "bad_cases" / "34_zero_stride.yaml"
    assert cli.main(["render", str(bad), "-o", str(tmp_path)]) == 1
    assert "34_zero_stride.yaml:7: strides: values must be >= 1" in capsys.readouterr()[1]


@pytest.mark.parametrize("style,op", [(s, o) for (s, o) in cli.SCAFFOLDS])
def test_every_scaffold_is_a_valid_case_file(style, op, tmp_path, capsys):
    target = tmp_path / "new.yaml"
    assert cli.main(["new", op, "--style", style, "-o", str(target)]) == 0
    text = target.read_text()
    assert text.count("#") >= 5  # commented
    cases = api.load_cases_text(text, target)
    assert cases and all(case.op == op and case.style == style for case in cases)
    assert cli.main(["new", op, "--style", style, "-o", str(target)]) == 1  # never overwrites
    assert "exists; not overwriting" in capsys.readouterr()[1]


def test_new_matlab_backprop_is_refused(capsys):
    assert cli.main(["new", "GroupConvolutionBackpropData", "--style", "matlab"]) == 1
    assert "groupedConvolution2dLayer is GroupConvolution" in capsys.readouterr()[1]


def _cli_module(*arguments: str) -> subprocess.CompletedProcess:
    """``python -m conformance.cli ...`` in a fresh process (works whether or not the package is installed)."""
    return subprocess.run([sys.executable, "-m", "conformance.cli", *arguments], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": ""})


def test_console_script_help():
    result = _cli_module("--help")
    assert result.returncode == 0
    for command in ("validate", "list", "render", "new"):
        assert command in result.stdout
    result = _cli_module("validate", "tests/bad_cases/34_zero_stride.yaml")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stdout.startswith("tests/bad_cases/34_zero_stride.yaml:7: strides: ")


@pytest.mark.skipif(shutil.which("benchmark_app") is None, reason="benchmark_app (from the openvino wheel) not on PATH")
def test_the_printed_benchmark_app_line_runs(tmp_path, capsys):
    case = api.load_cases("cases")[0]
    assert cli.main(["render", case.id, "-o", str(tmp_path)]) == 0
    [command] = [line for line in capsys.readouterr()[0].splitlines() if line.startswith("benchmark_app ")]
    argv = shlex.split(command.replace("-niter 100", "-niter 2"))
    result = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    assert "Throughput" in result.stdout
    # It reads the exported input (a missing one is an error), not generated data.
    missing = [arg.replace(".data.npy", ".missing.npy") for arg in argv]
    result = subprocess.run(missing, capture_output=True, text=True, timeout=300)
    assert result.returncode != 0 and "doesn't exist" in result.stdout + result.stderr
