"""The upstream report: benchdnn descriptors by hand, and a planted finding written end to end."""
from __future__ import annotations

import dataclasses
import json

import numpy as np

from conformance import api, cli, upstream
from conformance.case import load_cases_text
from conformance.runtime import Target

GROUPED = """
op: GroupConvolution
cases:
  - {name: a, data: [2, 4, 5, 6], kernel: [2, 3, 2, 3, 3], strides: [2, 1], pads_begin: [1, 0], pads_end: [1, 2],
     dilations: [1, 2]}
"""
BACKPROP = """
op: GroupConvolutionBackpropData
cases:
  - {name: b, data: [1, 4, 3, 3, 2], kernel: [2, 2, 3, 3, 3, 3], strides: 2, pads_begin: 1, pads_end: 1,
     dilations: 1, output_padding: [1, 0, 1]}
"""


def test_benchdnn_descriptors_match_hand_computed_problems():
    # H: (5 + 1 + 1 - 3) // 2 + 1 = 3; W: (6 + 0 + 2 - 5) // 1 + 1 = 4 (dilation 2: benchdnn's dw1).
    grouped = load_cases_text(GROUPED, "f.yaml")[0]
    assert upstream.benchdnn_descriptor(grouped) == "g2mb2_ic4oc6_ih5oh3kh3sh2dh0ph1_iw6ow4kw3sw1dw1pw0"
    # D: (3 - 1) * 2 + 3 - 2 + 1 = 6; H: 4 + 3 - 2 = 5; W: 2 + 3 - 2 + 1 = 4 (output_padding 1, 0, 1).
    backprop = load_cases_text(BACKPROP, "f.yaml")[0]
    assert upstream.benchdnn_descriptor(backprop) == "g2mb1_ic4oc6_id3od6kd3sd2dd0pd1_ih3oh5kh3sh2dh0ph1_iw2ow4kw3sw2dw0pw1"
    assert upstream.benchdnn_command(backprop).startswith("./benchdnn --deconv --dir=FWD_I --dt=f32:f32:f32")


def test_differing_elements_lists_the_first_outside_the_bound_in_c_order():
    expected = np.arange(6, dtype=np.float64).reshape(1, 2, 3)
    actual = expected.copy()
    actual[0, 1, 2] += 1.0
    actual[0, 0, 1] += 0.5
    bound = np.full(expected.shape, 0.25)
    assert upstream.differing_elements(expected, actual, bound) == [((0, 0, 1), 1.0, 1.5, 0.25),
                                                                    ((0, 1, 2), 5.0, 6.0, 0.25)]
    assert upstream.differing_elements(expected, actual[:, :1], bound) == []


def test_a_planted_finding_becomes_an_issue_with_bundle_and_benchdnn_line(tmp_path, monkeypatch):
    """A runtime wrong in one element (in this process) is reported; the ISA-capped runs (workers,
    the real OpenVINO) pass, and the report says so."""
    case = load_cases_text(GROUPED, "f.yaml")[0]
    real_run = api.run

    def wrong_in_one_element(ir, feeds, target, *args, **kwargs):
        result = real_run(ir, feeds, target, *args, **kwargs)
        output = np.array(result.output, copy=True)
        output.reshape(-1)[7] += 3.0
        return dataclasses.replace(result, output=output, outputs=(output,))

    monkeypatch.setattr(api, "run", wrong_in_one_element)
    report, issue = upstream.write_report(case, Target("CPU", "f32"), tmp_path / "report", ir_dir=tmp_path / "ir",
                                          isolate=False)
    assert report.main.status == "mismatch"
    assert {run.target_id: run.status for run in report.others} == {"CPU-f32-avx2": "passed",
                                                                    "CPU-f32-sse41": "passed"}
    text = issue.read_text()
    index = [int(i) for i in np.unravel_index(7, (2, 6, 3, 4))]
    assert f"| {index} |" in text and "1 of 144 elements" in text
    assert "g2mb2_ic4oc6_ih5oh3kh3sh2dh0ph1_iw6ow4kw3sw1dw1pw0" in text
    assert "| `CPU-f32-avx2` | passed |" in text
    bundle = tmp_path / "report" / "bundle"
    config = json.loads((bundle / "config.json").read_text())
    assert config["verdict"] == {"mismatches": 1, "total": 144}
    assert (bundle / "reproduce.py").is_file() and (bundle / "actual.npy").is_file()
    assert (tmp_path / "report" / "benchdnn.txt").read_text().startswith("./benchdnn --conv")


def test_cli_report_on_a_passing_case_says_there_is_nothing_to_report(tmp_path, capsys):
    cases = tmp_path / "cases"
    cases.mkdir()
    (cases / "ok.yaml").write_text(GROUPED)
    code = cli.main(["report", "ok.yaml::a", "-o", str(tmp_path / "out"), "--cases", str(cases),
                     "--ir-dir", str(tmp_path / "ir")])
    assert code == 1 and "nothing to report" in capsys.readouterr().out
    assert cli.main(["report", "ok.yaml::missing", "-o", str(tmp_path / "out"), "--cases", str(cases)]) == 2
