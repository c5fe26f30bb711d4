"""Case loading: parsing, defaults, sweep expansion and ids, source lines, seeds; and the
shipped cases/ tree itself (it loads, ids are unique, the coverage the suite promises is there).

Validation errors (bad fields, located messages) are tested in tests/test_case_schema.py.
"""
from __future__ import annotations

import itertools
import zlib
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from conformance import api, shapes
from conformance.case import load_cases_text
from conformance.inputs import INTEGER_RANGE, make_inputs

GROUP_CONVOLUTION, GROUP_CONVOLUTION_BACKPROP_DATA = "GroupConvolution", "GroupConvolutionBackpropData"
OPS = (GROUP_CONVOLUTION, GROUP_CONVOLUTION_BACKPROP_DATA)

REPO_ROOT = Path(__file__).resolve().parent.parent

SWEPT = """\
# a comment line
op: GroupConvolution
defaults:
  pads_begin: 1
  pads_end: 1
  strides: 1
cases:
  - name: swept
    data: [1, 4, 6, 6]
    kernel: [2, 3, 2, 3, 3]
    sweep:
      strides: [[1, 1], [2, 2]]
      auto_pad: [explicit, same_upper, valid]

  - name: plain
    data: [2, 2, 5]
    kernel: [2, 1, 1, 2]
    dilations: 2
"""


@pytest.fixture
def swept():
    return load_cases_text(SWEPT, "dir/conv.yaml", "sub/conv.yaml")


def test_sweep_is_the_cartesian_product_in_order(swept):
    expanded = [case for case in swept if case.name == "swept"]
    combinations = list(itertools.product([(1, 1), (2, 2)], ["explicit", "same_upper", "valid"]))
    assert [(case.strides, case.auto_pad) for case in expanded] == combinations
    assert [case.sweep for case in expanded][1] == (("strides", [1, 1]), ("auto_pad", "same_upper"))


def test_ids_name_file_case_and_swept_values(swept):
    assert [case.id for case in swept] == [
        "sub/conv.yaml::swept[strides=1x1-auto_pad=explicit]",
        "sub/conv.yaml::swept[strides=1x1-auto_pad=same_upper]",
        "sub/conv.yaml::swept[strides=1x1-auto_pad=valid]",
        "sub/conv.yaml::swept[strides=2x2-auto_pad=explicit]",
        "sub/conv.yaml::swept[strides=2x2-auto_pad=same_upper]",
        "sub/conv.yaml::swept[strides=2x2-auto_pad=valid]",
        "sub/conv.yaml::plain",
    ]
    assert {case.name for case in swept} == {"swept", "plain"}


def test_source_is_the_file_and_the_line_of_the_entry(swept):
    lines = SWEPT.splitlines()
    for case in swept:
        assert case.source.path == "dir/conv.yaml"
        assert lines[case.source.line - 1].strip() == f"- name: {case.name}"
    assert str(swept[-1].source) == "dir/conv.yaml:15"


def test_defaults_merge_under_the_entry_and_unset_fields_get_spec_defaults(swept):
    plain = swept[-1]
    assert plain.pads_begin == plain.pads_end == (1,)           # from defaults, broadcast to the rank
    assert plain.dilations == (2,)                              # bare integer broadcast to every axis
    assert plain.strides == (1,)
    assert plain.auto_pad == "explicit" and plain.fill == "integers" and plain.marks == ()
    assert plain.output_padding is None and plain.output_shape is None


def test_backprop_defaults():
    (case,) = load_cases_text("op: GroupConvolutionBackpropData\ncases:\n"
                              "  - name: b\n    data: [1, 2, 3, 4, 5]\n    kernel: [2, 1, 3, 2, 2, 2]\n")
    assert case.strides == case.dilations == (1, 1, 1)
    assert case.pads_begin == case.pads_end == case.output_padding == (0, 0, 0)
    assert case.output_shape is None and case.spatial_rank == 3
    geometry = case.geometry()
    assert (geometry.groups, geometry.in_channels_per_group, geometry.out_channels_per_group) == (2, 1, 3)
    assert geometry.output_shape == (1, 6, 4, 5, 6)


def test_common_fields_survive_every_style():
    """fill, seed, marks and spec_note are not lost on the way (a regression: they once were)."""
    (case,) = load_cases_text("op: GroupConvolution\ncases:\n  - name: c\n    data: [1, 2, 3]\n"
                              "    kernel: [2, 1, 1, 1]\n    fill: uniform\n    seed: 7\n    marks: [slow]\n"
                              "    spec_note: sn-x\n    description: why\n")
    assert (case.fill, case.seed, case.marks, case.spec_note, case.description) == (
        "uniform", 7, ("slow",), "sn-x", "why")


def test_seeds_are_deterministic_and_differ_between_cases(swept):
    again = load_cases_text(SWEPT, "dir/conv.yaml", "sub/conv.yaml")
    assert [case.seed for case in swept] == [case.seed for case in again]
    assert all(case.seed == zlib.crc32(case.id.encode()) for case in swept)
    assert len({case.seed for case in swept}) == len(swept)
    first, second = make_inputs(swept[0]), make_inputs(again[0])
    assert np.array_equal(first.data, second.data) and np.array_equal(first.kernel, second.kernel)
    other = make_inputs(swept[1])
    assert not np.array_equal(first.data, other.data)


def test_integer_fill_is_small_integers_in_f32(swept):
    inputs = make_inputs(swept[0])
    assert inputs.data.dtype == inputs.kernel.dtype == np.float32
    assert inputs.data.shape == swept[0].data_shape and inputs.kernel.shape == swept[0].kernel_shape
    low, high = INTEGER_RANGE
    for array in (inputs.data, inputs.kernel):
        assert np.array_equal(array, np.round(array)) and low <= array.min() and array.max() <= high


def test_slow_case_over_the_memory_budget_loads_but_others_are_refused():
    text = ("op: GroupConvolution\ncases:\n  - name: big\n    data: [1, 4, 64, 64]\n"
            "    kernel: [4, 1, 1, 3, 3]\n{marks}")
    (slow,) = load_cases_text(text.format(marks="    marks: [slow]\n"), memory_budget="10KiB")
    assert slow.marks == ("slow",)
    with pytest.raises(api.CaseError, match="memory budget"):
        load_cases_text(text.format(marks=""), memory_budget="10KiB")


# --- the shipped cases/ tree ----------------------------------------------------------

@pytest.fixture(scope="module")
def shipped():
    return api.load_cases(REPO_ROOT / "cases")


def test_shipped_cases_load_with_unique_ids(shipped):
    ids = [case.id for case in shipped]
    assert len(ids) == len(set(ids))
    assert all(case.source.line > 0 for case in shipped)


def test_shipped_cases_cover_what_the_suite_promises(shipped):
    default_run = [case for case in shipped if "slow" not in case.marks]
    assert len(default_run) >= 160
    by_op = Counter(case.op for case in default_run)
    for op in OPS:
        assert by_op[op] >= 60, by_op
        of_op = [case for case in default_run if case.op == op]
        assert {case.spatial_rank for case in of_op} == {1, 2, 3}
        assert {case.auto_pad for case in of_op} == set(shapes.AUTO_PADS)
        assert any(case.pads_begin != case.pads_end and case.auto_pad == "explicit" for case in of_op)
        assert any(max(case.strides) > 1 and max(case.dilations) > 1 for case in of_op)
        assert any(case.data_shape[0] > 1 for case in of_op)
        groups = [case.geometry() for case in of_op]
        assert any(g.groups == 1 for g in groups)
        assert any(g.in_channels_per_group == g.out_channels_per_group == 1 and g.groups > 1 for g in groups)
        assert any(g.in_channels_per_group > 1 and g.out_channels_per_group > 1 and g.groups > 1 for g in groups)
        assert any(case.fill == "uniform" for case in of_op)
    backprop = [case for case in default_run if case.op == GROUP_CONVOLUTION_BACKPROP_DATA]
    with_shape = [case for case in backprop if case.output_shape is not None]
    assert {case.auto_pad for case in with_shape} == set(shapes.AUTO_PADS)
    totals = {total for case in with_shape for total in
              (sum(case.geometry().pads_begin) + sum(case.geometry().pads_end),)}
    assert {0, 1, 2, 3} <= totals                                # odd and even total padding
    assert any(any(case.output_padding) for case in with_shape)  # output_padding with output_shape
    assert any(any(case.output_padding) and case.output_shape is None for case in backprop)


def test_spec_examples_are_there_and_full_size_3d_is_slow(shipped):
    examples = {(case.op, case.spatial_rank): case for case in shipped
                if case.id.startswith("spec_examples/") and case.name.startswith("spec_example_")
                and case.name[len("spec_example_"):] in ("1d", "2d", "3d")}
    assert set(examples) == {(op, rank) for op in OPS for rank in (1, 2, 3)}
    for (op, rank), case in examples.items():
        expected = (1, 4) + (224,) * rank if op == GROUP_CONVOLUTION else (1, 8) + (447,) * rank
        assert case.geometry().output_shape == expected
        assert ("slow" in case.marks) == (rank == 3)
