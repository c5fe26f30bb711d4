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


# Text-level mutations: any character (controls, surrogates, BiDi, line separators, a BOM) inserted
# anywhere in a valid file, deep nesting, huge integers. Loading gives cases or located CaseErrors
# whose messages are one printable, UTF-8-encodable line each: never a traceback.
VALID_TEXT = """op: GroupConvolutionBackpropData
defaults:
  dilations: [1, 1]
cases:
  - name: a
    data: [1, 4, 5, 5]
    kernel: [2, 2, 2, 3, 3]
    strides: 2
    output_padding: 1
    sweep:
      auto_pad: [explicit, valid]
"""
pieces = st.one_of(st.characters(codec=None), st.sampled_from(
    ["\x00", "\x0c", "\x85", "\u2028", "\u202e", "\u200b", "\ufeff", "\ud800", "\uffff", "\r", "\t", "\\", '"',
     "'", "&a ", "*a ", "<<: ", "!!python/object ", "[" * 40, "{", "}", ": ", "- ", "%YAML 2.0\n", "---\n"]))
huge_numbers = st.one_of(st.integers(-2**80, 2**80), st.sampled_from(["1.0e+400", ".nan", "-.inf", "-0", "0x10"]))


@st.composite
def mutated_text(draw):
    text = VALID_TEXT
    for _ in range(draw(st.integers(1, 3))):
        if draw(st.booleans()):
            position = draw(st.integers(0, len(text)))
            text = text[:position] + "".join(draw(st.lists(pieces, min_size=1, max_size=4))) + text[position:]
        else:
            numbers = [match.span() for match in re.finditer(r"\d+", text)]
            start, end = draw(st.sampled_from(numbers))
            text = text[:start] + str(draw(huge_numbers)) + text[end:]
    return text


LOCATED_LINE = re.compile(r"^f\.yaml(:\d+)?: \S")


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_text())
def test_any_text_loads_or_fails_with_one_printable_located_line_per_problem(text):
    try:
        cases = load_cases_text(text, "f.yaml")
    except CaseError as error:
        problems = error.errors if isinstance(error, CaseFileErrors) else [error]
        for problem in problems:
            message = str(problem)
            assert LOCATED_LINE.match(message), message
            assert len(message.splitlines()) == 1 and message.isprintable(), ascii(message)
            message.encode("utf-8")
    else:
        for case in cases:
            assert all(1 <= dim <= 2**63 - 1 for dim in case.geometry().output_shape)
            case.id.encode("utf-8")
