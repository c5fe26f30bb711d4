"""Property tests: the torch oracle and the shape formulas equal the literal spec reference.

Random valid configurations (tests/case_strategies.py) go through the harness
exactly as a case file would (YAML -> Case -> inputs -> oracle) and through
tests/literal_reference.py, which shares no code with the oracle. A failure
prints the configuration as a case file.

Profiles (tests/conftest.py): ``quick`` (default, CI) and ``deep`` (thousands of
examples): ``CONFORMANCE_HYPOTHESIS_PROFILE=deep python -m pytest tests/test_oracle_properties.py``
or ``tox -e oracle-deep``.
"""
from __future__ import annotations

import numpy as np
from hypothesis import given, note

from conformance import oracle
from conformance.inputs import make_inputs
from tests import literal_reference as literal
from tests.case_strategies import CONV, op_configs

# Both sides are float64 sums of the same products in different orders: the
# difference is a few ulps of the sum of |products| (the oracle's magnitude).
RELATIVE_TO_MAGNITUDE = 1e-12


def _literal_output(case, data, kernel):
    common = (case.strides, case.pads_begin, case.pads_end, case.dilations, case.auto_pad)
    if case.op == CONV:
        return literal.group_convolution(data, kernel, *common)
    return literal.group_convolution_backprop_data(data, kernel, *common, case.output_padding, case.output_shape)


def _literal_geometry(case):
    spatial, taps = case.data_shape[2:], case.kernel_shape[3:]
    common = (case.strides, case.pads_begin, case.pads_end, case.dilations, case.auto_pad)
    if case.op == CONV:
        return literal.convolution_geometry(spatial, taps, *common)
    return literal.backprop_geometry(spatial, taps, *common, case.output_padding, case.output_shape)


@given(config=op_configs())
def test_torch_oracle_equals_literal_reference(config):
    case = config.case()
    inputs = make_inputs(case)
    expected = _literal_output(case, inputs.data, inputs.kernel)
    got = oracle.reference(case, inputs)
    note(f"literal output shape {expected.shape}, torch oracle {got.output.shape}")
    assert got.output.shape == expected.shape, "torch oracle and literal reference disagree on the output shape"
    error = np.abs(got.output - expected)
    bound = RELATIVE_TO_MAGNITUDE * got.magnitude
    worst = np.unravel_index(np.argmax(error - bound), error.shape) if error.size else None
    assert np.all(error <= bound), (
        f"torch oracle differs from the literal reference at {list(map(int, worst))}: "
        f"torch {got.output[worst]!r}, literal {expected[worst]!r}, allowed {bound[worst]:.3g}")


@given(config=op_configs())
def test_shapes_equal_literal_geometry(config):
    """conformance.shapes (output shape and effective pads) == the literal reading of the spec."""
    case = config.case()
    geometry = case.geometry()
    expected = _literal_geometry(case)
    channels = case.kernel_shape[0] * (case.kernel_shape[1] if case.op == CONV else case.kernel_shape[2])
    assert geometry.output_shape == (case.data_shape[0], channels) + expected.output_spatial
    assert (geometry.pads_begin, geometry.pads_end) == (expected.pads_begin, expected.pads_end)
