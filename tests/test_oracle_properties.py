"""Property tests: the torch oracle and the shape formulas equal the literal spec reference.

Random valid configurations (tests/case_strategies.py) go through the harness
exactly as a case file would (YAML -> Case -> inputs -> oracle) and through
tests/literal_reference.py, which shares no code with the oracle. A failure
prints the configuration as a case file.

The slab-by-slab oracle used for large outputs (``oracle.reference_slabs``) is
checked the same way, with random slab heights, in float64 and in the float32
shortcut it takes for integer inputs (which must be exact).

``edge_configs`` draws what the spec allows and frameworks do not: output_padding
beyond max(stride, dilation), crops past the full result, output_shape larger
than it, output sizes of 1, strides of 2**40.

Profiles (tests/conftest.py): ``quick`` (default, CI) and ``deep`` (thousands of
examples): ``CONFORMANCE_HYPOTHESIS_PROFILE=deep python -m pytest tests/test_oracle_properties.py``
or ``tox -e oracle-deep``.
"""
from __future__ import annotations

import numpy as np
import torch
from hypothesis import event, given, note, settings
from hypothesis import strategies as st

from conformance import oracle
from conformance.inputs import Inputs, make_inputs
from tests import literal_reference as literal
from tests.case_strategies import CONV, HUGE_STRIDE, OpConfig, edge_configs, op_configs

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


def _streamed_output(case, inputs, planes, dtype=None):
    slabs = list(oracle.reference_slabs(case, inputs, planes=planes, dtype=dtype))
    assert [slab.start for slab in slabs] == list(range(0, case.geometry().output_shape[2], planes))
    return (np.concatenate([slab.output for slab in slabs], axis=2),
            np.concatenate([slab.magnitude for slab in slabs], axis=2))


@given(config=op_configs(), planes=st.integers(1, 6))
def test_streamed_oracle_equals_literal_reference(config, planes):
    """The slab-by-slab oracle (large outputs) in float64, any slab height, == the literal reference."""
    case = config.case()
    inputs = make_inputs(case)
    expected = _literal_output(case, inputs.data, inputs.kernel)
    output, magnitude = _streamed_output(case, inputs, planes, torch.float64)
    assert output.shape == expected.shape
    error = np.abs(output - expected)
    assert np.all(error <= RELATIVE_TO_MAGNITUDE * magnitude), (
        f"streamed oracle ({planes} planes per slab) differs from the literal reference by up to {error.max():.3g}")


@given(config=op_configs(), planes=st.integers(1, 6))
def test_streamed_oracle_float32_shortcut_is_exact(config, planes):
    """With integer inputs the oracle may compute in float32 (oracle_dtype): it must equal the literal exactly."""
    integer_config = OpConfig(config.op, {**config.fields, "fill": "integers"})
    note(integer_config.yaml())
    case = integer_config.case()
    inputs = make_inputs(case)
    expected = _literal_output(case, inputs.data, inputs.kernel)
    event(f"oracle dtype {oracle.oracle_dtype(case, inputs)}")
    output, _ = _streamed_output(case, inputs, planes)
    np.testing.assert_array_equal(output, expected)


@given(config=op_configs())
def test_whole_oracle_float32_shortcut_is_exact(config):
    """The whole (not streamed) reference computes in float32 when ``oracle_dtype`` says it is exact:
    its output equals the literal reference exactly, and output and magnitude equal what float64
    convolutions give, bit for bit."""
    integer_config = OpConfig(config.op, {**config.fields, "fill": "integers"})
    note(integer_config.yaml())
    case = integer_config.case()
    inputs = make_inputs(case)
    event(f"oracle dtype {oracle.oracle_dtype(case, inputs)}")
    result = oracle.reference(case, inputs)
    assert result.output.dtype == result.magnitude.dtype == np.float64
    np.testing.assert_array_equal(result.output, _literal_output(case, inputs.data, inputs.kernel))
    with torch.no_grad():
        data = torch.from_numpy(inputs.data.astype(np.float64))
        kernel = torch.from_numpy(inputs.kernel.astype(np.float64))
        in_float64 = oracle.apply_op(case, data, kernel).numpy()
        magnitude64 = oracle.apply_op(case, data.abs(), kernel.abs()).numpy()
    assert result.output.tobytes() == in_float64.tobytes() and result.magnitude.tobytes() == magnitude64.tobytes()


def _assert_close_to_literal(output, magnitude, expected, what):
    assert output.shape == expected.shape, f"{what} and literal reference disagree on the output shape"
    error = np.abs(output - expected)
    assert np.all(error <= RELATIVE_TO_MAGNITUDE * magnitude), (
        f"{what} differs from the literal reference by up to {error.max():.3g}")


@given(config=edge_configs())
def test_oracle_equals_literal_reference_at_the_edges(config):
    """output_padding >= max(stride, dilation), crops past the result, output_shape beyond it,
    output sizes of 1, strides of 2**40: the oracle computes them all, as the literal reference does."""
    case = config.case()
    geometry = case.geometry()
    literal_geometry = _literal_geometry(case)
    assert geometry.output_shape[2:] == literal_geometry.output_spatial
    assert (geometry.pads_begin, geometry.pads_end) == (literal_geometry.pads_begin, literal_geometry.pads_end)
    inputs = make_inputs(case)
    expected = _literal_output(case, inputs.data, inputs.kernel)
    got = oracle.reference(case, inputs)
    _assert_close_to_literal(got.output, got.magnitude, expected, "torch oracle")
    output, magnitude = _streamed_output(case, inputs, 1, torch.float64)
    _assert_close_to_literal(output, magnitude, expected, "streamed oracle (1 plane per slab)")


ALL_OPS = ("GroupConvolution", "GroupConvolutionBackpropData", "Convolution", "ConvolutionBackpropData")


def _assert_reach_is_the_convolution_of_ones(case):
    """``taps.reached`` by the ops' per-axis index arithmetic (``Op.reach``) is the mask the oracle's
    own convolution of all-ones data and kernel gives, element for element."""
    from dataclasses import replace

    from conformance import ops, taps
    single = replace(case, data_shape=(1, 1) + case.data_shape[2:],
                     kernel_shape=ops.get(case.op).single_channel_kernel_shape(case.kernel_shape))
    assert ops.get(case.op).reach(single, single.geometry()) is not None
    got, expected = taps._reached(single), taps._reached_by_convolution(single)
    assert got.shape == expected.shape and got.dtype == expected.dtype
    assert np.array_equal(got, expected), f"reach differs at {np.argwhere(got != expected)[:5].tolist()}"


@given(config=op_configs(ops=ALL_OPS))
def test_native_convolutions_give_onednns_reference_bits(config):
    """Small oracle convolutions run on torch's native kernels (``taps.NATIVE_CONVOLUTION_WORK``):
    the same bits as through oneDNN (float32 only where exact; oneDNN has no float64)."""
    import pytest

    from conformance import taps
    case = config.case()
    drawn = make_inputs(case)
    inputs = Inputs(drawn.data, drawn.kernel)   # without the draw's op output: both convolutions run
    native = oracle.reference(case, inputs)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(taps, "NATIVE_CONVOLUTION_WORK", -1)
        onednn = oracle.reference(case, inputs)
    assert native.output.dtype == onednn.output.dtype
    assert np.array_equal(native.output, onednn.output) and np.array_equal(native.magnitude, onednn.magnitude)


@given(config=op_configs(ops=ALL_OPS))
def test_reach_by_index_is_the_convolution_of_ones(config):
    _assert_reach_is_the_convolution_of_ones(config.case())


@given(config=edge_configs(ops=ALL_OPS))
def test_reach_by_index_is_the_convolution_of_ones_at_the_edges(config):
    """output_padding past the result, crops past it, output_shape beyond it, strides of 2**40."""
    _assert_reach_is_the_convolution_of_ones(config.case())


def test_edge_configurations_are_drawn():
    """The edge strategy really reaches the edges it names (else the test above proves little)."""
    seen = set()

    @settings(max_examples=300, database=None, derandomize=True)
    @given(config=edge_configs())
    def collect(config):
        case = config.case()
        geometry = case.geometry()
        if case.output_padding and any(p >= max(s, d) for p, s, d in
                                       zip(case.output_padding, case.strides, case.dilations)):
            seen.add("output_padding >= max(stride, dilation)")
        if HUGE_STRIDE in case.strides:
            seen.add("stride 2**40")
        if 1 in geometry.output_shape[2:]:
            seen.add("output size 1")
        if case.op != CONV and min(geometry.pads_begin) < 0:
            seen.add("output_shape beyond the full result")
        if case.op != CONV and case.output_shape is None and any(
                b >= s * (x - 1) + (k - 1) * d + 1 for b, x, k, s, d in zip(
                    geometry.pads_begin, case.data_shape[2:], case.kernel_shape[3:], case.strides, case.dilations)):
            seen.add("pads_begin past the full result")
        if case.op == CONV and max(case.pads_begin + case.pads_end) > max(case.data_shape[2:]):
            seen.add("pads larger than the input")

    collect()
    assert seen == {"output_padding >= max(stride, dilation)", "stride 2**40", "output size 1",
                    "output_shape beyond the full result", "pads_begin past the full result",
                    "pads larger than the input"}
