"""Failing grouped items are re-run as their ungrouped sibling op, one model per group.

The known GROUPS = 1 BackpropData compile failure (docs/spec-notes.md#dev-backprop-groups-1) is
specific to GroupConvolutionBackpropData: ConvolutionBackpropData computes the same thing on CPU.
The output_shape crop deviation (docs/spec-notes.md#sn-valid-output-shape) is not: the sibling
crops the same wrong window. Both facts reach the failure message and the JSON record.
"""
from __future__ import annotations

import numpy as np
import pytest

from conformance import api, ops
from conformance.case import load_cases_text
from reporting_support import read_json, subprocess_project

SINGLE_GROUP = """\
op: GroupConvolutionBackpropData
cases:
  - name: single_group            # as cases/group_convolution_backprop_data/groups.yaml::single_group
    data: [1, 3, 5, 5]
    kernel: [1, 3, 4, 3, 3]
    strides: [2, 2]
    pads_begin: [1, 1]
    pads_end: [1, 1]
"""

BEGIN_CROP = """\
op: GroupConvolutionBackpropData
cases:
  - name: valid_begin_crop        # as cases/group_convolution_backprop_data/output_shape.yaml::os1d_begin_crop
    data: [1, 4, 5]
    kernel: [2, 2, 2, 3]
    strides: [2]
    auto_pad: valid
    output_shape: [8]
"""

CPU = api.Target("CPU", "f32")


def _first(text):
    return load_cases_text(text, "<test>")[0]


def test_group_slices_recompose_the_grouped_oracle():
    """The decomposition is exact on the oracle: the siblings' references, concatenated, are the
    grouped reference, for both ops and for depthwise."""
    for text in (SINGLE_GROUP, BEGIN_CROP, SINGLE_GROUP.replace("GroupConvolutionBackpropData", "GroupConvolution")
                 .replace("[1, 3, 4, 3, 3]", "[1, 4, 3, 3, 3]")):
        case = _first(text)
        inputs = api.make_inputs(case)
        parts = api.group_slices(case, inputs)
        assert {sub.op for sub, _ in parts} == {ops.get(case.op).sibling}
        joined = np.concatenate([api.reference(sub, sub_inputs).output for sub, sub_inputs in parts], axis=1)
        np.testing.assert_array_equal(joined, api.reference(case, inputs).output)


def test_single_group_backprop_fails_only_as_the_grouped_op(tmp_path):
    case = _first(SINGLE_GROUP)
    (step,) = api.prepare(case)
    try:
        api.check(case, CPU, tmp_path, steps=(step,))
        pytest.skip("this OpenVINO compiles GROUPS = 1 BackpropData: nothing to diagnose")
    except api.RuntimeRejected:
        pass
    check = api.check_per_group(case, CPU, step.inputs, step.reference, tmp_path)
    assert (check.sibling, check.groups, check.passed) == ("ConvolutionBackpropData", 1, True)
    assert "specific to the grouped op" in check.describe()


def test_output_shape_crop_deviation_is_not_specific_to_the_grouped_op(tmp_path):
    case = _first(BEGIN_CROP)
    (step,) = api.prepare(case)
    if api.check(case, CPU, tmp_path, steps=(step,)).verdict.passed:
        pytest.skip("this OpenVINO crops as the spec says")
    check = api.check_per_group(case, CPU, step.inputs, step.reference, tmp_path)
    assert (check.sibling, check.groups, check.passed) == ("ConvolutionBackpropData", 2, False)
    assert check.verdict.mismatches > 0 and "not specific to the grouped op" in check.describe()


def test_ungrouped_ops_have_no_per_group_check(tmp_path):
    case = _first(SINGLE_GROUP.replace("op: GroupConvolutionBackpropData", "op: ConvolutionBackpropData")
                  .replace("[1, 3, 4, 3, 3]", "[3, 4, 3, 3]"))
    (step,) = api.prepare(case)
    assert api.check_per_group(case, CPU, step.inputs, step.reference, tmp_path) is None


def test_failure_message_and_record_say_whether_the_sibling_passes(pytester, monkeypatch):
    subprocess_project(pytester, monkeypatch, {"groups.yaml": SINGLE_GROUP, "crop.yaml": BEGIN_CROP})
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    records = {item["case_id"]: item for item in read_json(pytester.path / "reports" / "conformance.json")["items"]}
    single, crop = records["groups.yaml::single_group"], records["crop.yaml::valid_begin_crop"]
    if single["outcome"] == "failed":
        result.stdout.fnmatch_lines(["*per-group check (1 x ConvolutionBackpropData on each group's channels, "
                                     "concatenated): passes -> the deviation is specific to the grouped op*"])
        assert single["per_group"] == {"sibling": "ConvolutionBackpropData", "groups": 1, "passed": True,
                                       "mismatches": 0, "total": single["per_group"]["total"]}
    if crop["outcome"] == "failed":
        result.stdout.fnmatch_lines(["*per-group check (2 x ConvolutionBackpropData*): fails too (*) -> "
                                     "not specific to the grouped op*"])
        assert crop["per_group"]["passed"] is False and crop["per_group"]["groups"] == 2


NEGATIVE_PADS = """\
op: GroupConvolution
cases:
  - name: negative_pads_begin     # as cases/spec_notes/negative_pads.yaml::conv_negative_pads_begin
    allow_negative_pads: true
    data: [1, 2, 6]
    kernel: [2, 1, 1, 2]
    pads_begin: [-1]
    pads_end: [0]
"""


@pytest.mark.parametrize("text", [BEGIN_CROP, NEGATIVE_PADS, SINGLE_GROUP.replace("[1, 3, 5, 5]", "[1, 6, 5, 5]")
                                  .replace("[1, 3, 4, 3, 3]", "[3, 2, 4, 3, 3]")], ids=["crop", "negative_pads", "three"])
def test_slices_in_one_model_give_what_one_model_per_group_gives(tmp_path, text):
    """The slices share one compiled model by default (``batch``: their number); the verdict, its
    figures and any error are those of one model per group."""
    case = _first(text)
    (step,) = api.prepare(case)
    together = api.check_per_group(case, CPU, step.inputs, step.reference, tmp_path)
    apart = api.check_per_group(case, CPU, step.inputs, step.reference, tmp_path, batched=False)
    assert together.batch == together.groups > 1 and apart.batch == 0
    assert together.record()["batch"] == together.groups and "batch" not in apart.record()
    assert (together.passed, together.error) == (apart.passed, apart.error)
    if apart.verdict is not None:
        assert (together.verdict.mismatches, together.verdict.total) == (apart.verdict.mismatches,
                                                                          apart.verdict.total)


def test_several_items_slices_in_one_model_give_each_item_its_own_check(tmp_path):
    """``check_per_group_together``: the slices of several failing items in one model (a rejected
    slice bisected to itself); each item's check is what its own check gives."""
    items = []
    for text in (BEGIN_CROP, NEGATIVE_PADS, SINGLE_GROUP.replace("[1, 3, 5, 5]", "[1, 6, 5, 5]")
                 .replace("[1, 3, 4, 3, 3]", "[3, 2, 4, 3, 3]")):
        case = _first(text)
        (step,) = api.prepare(case)
        items.append((case, step.inputs, step.reference))
    together = api.check_per_group_together(items, CPU, tmp_path)
    for (case, inputs, expected), check in zip(items, together):
        alone = api.check_per_group(case, CPU, inputs, expected, tmp_path, batched=False)
        assert check.batch == 2 + 2 + 3 and (check.passed, check.error) == (alone.passed, alone.error)
        if alone.verdict is not None:
            assert (check.verdict.mismatches, check.verdict.total) == (alone.verdict.mismatches, alone.verdict.total)
