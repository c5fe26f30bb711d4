"""Property: whatever YAML a user writes, loading gives cases or located CaseErrors, never a traceback."""
from __future__ import annotations

import re

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conformance.case import SCHEMA, CaseError, CaseFileErrors, load_cases_text

FIELD_NAMES = sorted(SCHEMA) + ["name", "sweep", "bogus"]
scalars = st.one_of(
    st.integers(-3, 12), st.integers(-10**20, 10**20), st.booleans(), st.none(), st.floats(allow_nan=False),
    st.sampled_from(["same", "valid", "explicit", "same_upper", "channelwise", "zeros", "pytorch", "matlab",
                     "spec", "integers", "slow", "1 2", "", "x<&\"y"]))
small_lists = st.lists(st.integers(-1, 9), min_size=0, max_size=7)
values = st.one_of(scalars, small_lists, st.lists(small_lists, max_size=3), st.lists(scalars, max_size=3))
entries = st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=10).map(
    lambda d: {**d, "sweep": {k: v for k, v in d.items() if k in SCHEMA and isinstance(v, list)}}
    if "sweep" in d else d)
documents = st.fixed_dictionaries(
    {"op": st.sampled_from(["GroupConvolution", "GroupConvolutionBackpropData", "Conv"]),
     "cases": st.lists(entries, min_size=0, max_size=3)},
    optional={"defaults": st.dictionaries(st.sampled_from(FIELD_NAMES), values, max_size=4)})

LOCATED = re.compile(r"^f\.yaml(:\d+)?: ")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(documents)
def test_any_document_loads_or_fails_with_located_errors(document):
    text = yaml.safe_dump(document, default_flow_style=None, sort_keys=False)
    try:
        cases = load_cases_text(text, "f.yaml", memory_budget="1GiB")
    except CaseFileErrors as errors:
        assert errors.errors
        for error in errors.errors:
            assert LOCATED.match(str(error)), str(error)
    except CaseError as error:
        assert LOCATED.match(str(error)), str(error)
    else:
        for case in cases:
            assert all(dim >= 1 for dim in case.geometry().output_shape)


# Mutations of valid cases reach the translators and the relation checks.
VALID = [
    ("GroupConvolution", {"data": [1, 4, 6, 6], "kernel": [2, 2, 2, 3, 3], "strides": [1, 2], "pads_begin": 1,
                          "pads_end": [0, 1], "dilations": 1, "auto_pad": "explicit"}),
    ("GroupConvolutionBackpropData", {"data": [1, 4, 5], "kernel": [2, 2, 3, 3], "strides": 2,
                                      "output_padding": 1, "output_shape": [9]}),
    ("GroupConvolution", {"style": "pytorch", "input_shape": [1, 4, 8, 8], "in_channels": 4, "out_channels": 6,
                          "groups": 2, "kernel_size": 3, "stride": 1, "padding": "same", "dilation": [1, 2]}),
    ("GroupConvolutionBackpropData", {"style": "pytorch", "input_shape": [1, 4, 5], "in_channels": 4,
                                      "out_channels": 2, "groups": 2, "kernel_size": 3, "stride": 2,
                                      "padding": 1, "output_padding": 1}),
    ("GroupConvolution", {"style": "matlab", "InputSize": [9, 8, 4], "FilterSize": [3, 2], "NumFiltersPerGroup": 2,
                          "NumGroups": "channelwise", "Stride": 2, "Padding": "same", "DilationFactor": 1}),
]


@st.composite
def mutated(draw):
    op, base = draw(st.sampled_from(VALID))
    entry = {"name": "m", **base}
    for _ in range(draw(st.integers(0, 3))):
        key = draw(st.sampled_from(sorted(entry) + FIELD_NAMES))
        if draw(st.booleans()) and key in entry:
            del entry[key]
        else:
            entry[key] = draw(values)
    entry.pop("sweep", None)
    if draw(st.booleans()):
        key = draw(st.sampled_from(sorted(SCHEMA)))
        entry["sweep"] = {key: draw(st.lists(values, min_size=1, max_size=3))}
    return {"op": op, "cases": [entry]}


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated())
def test_mutated_valid_cases_load_or_fail_with_located_errors(document):
    test_any_document_loads_or_fails_with_located_errors.hypothesis.inner_test(document)
