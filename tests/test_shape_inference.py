"""The harness's shapes and pads (conformance.shapes) vs what OpenVINO itself does.

Two observations per random configuration (tests/case_strategies.py):

1. OpenVINO's shape inference: the op built with ``openvino.opset1``, its
   ``get_output_partial_shape(0)`` vs ``Case.geometry().output_shape``.
2. The effective pads on CPU: the case rendered to IR as the suite renders it
   (the IR path matters: see sn-explicit-output-shape), with a kernel that is a single 1 at tap 0
   and whose data holds each element's flat index + 1, so every output element
   names the input element it came from; the output is compared with the
   harness's oracle, and on a difference the pads the CPU used are decoded.

Disagreements are findings, not failures to silence: each known class below
is matched by a predicate, names the spec note that documents it, and (for the
CPU) states what OpenVINO does instead, which is checked. A disagreement no
class explains fails the test and prints the configuration as a case file.
``test_known_disagreement_still_present`` pins one example per class to the
OpenVINO release it was seen on, so a fixed OpenVINO is noticed.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import tempfile

import numpy as np
import pytest
import torch
from hypothesis import event, example, given, note, settings

from conformance import oracle
from conformance.case import Case, load_cases_text
from conformance.expectations import release_of
from conformance.inputs import Inputs
from conformance.render import render
from conformance.runtime import Target, openvino_version, run
from tests.case_strategies import BACKPROP, CONV, OpConfig, edge_configs, op_configs

ov = pytest.importorskip("openvino")
opset1 = pytest.importorskip("openvino.opset1")

SEEN_ON = "2026.4.1"   # the OpenVINO release the classes below were observed on


@dataclass(frozen=True)
class Disagreement:
    """A known class of disagreement between OpenVINO and the harness's reading of the spec."""

    id: str
    spec_note: str                      # docs/spec-notes.md anchor
    what: str                           # what OpenVINO does instead
    applies: Callable[[Case], bool]
    example: str                        # a case file (YAML) in this class
    # CPU run only: given (case, observed pads_begin or None, compile error or None), is the
    # observation the one this class describes?
    explains: Callable[[Case, tuple | None, str | None], bool] = lambda case, pads, error: True


def _negative_pads(case: Case) -> bool:
    return case.auto_pad == "explicit" and min(case.pads_begin + case.pads_end) < 0


def _yaml(op, **fields) -> str:
    lines = [f"op: {op}", "cases:", "  - name: example"]
    lines += [f"    {key}: {str(value).lower() if isinstance(value, bool) else value}" for key, value in fields.items()]
    return "\n".join(lines) + "\n"


SHAPE_INFERENCE_DISAGREEMENTS = [
    Disagreement(
        id="conv-negative-pads",
        spec_note="sn-negative-pads",
        what="GroupConvolution shape inference with a negative pad does not use X + pads_begin + pads_end: "
             "it gives a larger size or an interval (e.g. [1,1,4..]); the spec only defines pads >= 0",
        applies=lambda case: case.op == CONV and _negative_pads(case),
        example=_yaml(CONV, data=[1, 1, 4], kernel=[1, 1, 1, 1], pads_begin=[0], pads_end=[-1],
                      allow_negative_pads=True)),
]

def _total_padding_without_output_padding(case: Case) -> tuple:
    """BackpropData with output_shape: s*(X-1) + (K-1)*d + 1 - output_shape per axis (the spec adds output_padding)."""
    return tuple(stride * (size - 1) + (kernel - 1) * dilation + 1 - wanted for stride, size, kernel, dilation, wanted
                 in zip(case.strides, case.data_shape[2:], case.kernel_shape[3:], case.dilations, case.output_shape))


CPU_DISAGREEMENTS = [
    Disagreement(   # first: in this region the CPU does not use the attribute pads either (next class)
        id="backprop-output-shape-output-padding-ge-stride",
        spec_note="sn-output-padding-range",
        what="with output_shape, output_padding >= stride, a one-tap kernel and stride 1, CPU leaves output_padding "
             "out of total_padding (pads_begin = (s*(X-1) + (K-1)*d + 1 - output_shape) // 2, whatever auto_pad "
             "and the attribute pads); the spec's total_padding includes it (registry: "
             "fuzz-backprop-output-shape-output-padding-ge-stride)",
        applies=lambda case: (case.op == BACKPROP and case.output_shape is not None
                              and math.prod(case.kernel_shape[3:]) == 1 and set(case.strides) == {1}
                              and any(padding >= stride for padding, stride in zip(case.output_padding, case.strides))),
        explains=lambda case, pads, error: error is None and (
            pads is None or pads == tuple(max(0, total) // 2 for total in _total_padding_without_output_padding(case))),
        example=_yaml(BACKPROP, data=[1, 1, 3], kernel=[1, 1, 1, 1], output_padding=[2], output_shape=[3])),
    Disagreement(
        id="backprop-output-shape-explicit-uses-attribute-pads",
        spec_note="sn-explicit-output-shape",
        what="with output_shape and auto_pad explicit, CPU crops the *attribute* pads_begin from the front "
             "(the spec: attribute pads are ignored, pads_begin = total_padding // 2); with zero attribute "
             "pads this looks like 'all padding at the end'",
        applies=lambda case: (case.op == BACKPROP and case.output_shape is not None and case.auto_pad == "explicit"
                              and case.geometry().pads_begin != case.pads_begin),
        explains=lambda case, pads, error: error is None and (pads is None or pads == case.pads_begin),
        example=_yaml(BACKPROP, data=[1, 1, 3], kernel=[1, 1, 1, 3], output_shape=[3])),
    Disagreement(
        id="backprop-output-shape-valid-pads-begin-0",
        spec_note="sn-valid-output-shape",
        what="with output_shape and auto_pad valid, CPU crops all total_padding at the end (pads_begin = 0); "
             "the spec formula gives pads_begin = total_padding // 2",
        applies=lambda case: (case.op == BACKPROP and case.output_shape is not None and case.auto_pad == "valid"
                              and any(case.geometry().pads_begin)),
        explains=lambda case, pads, error: error is None and (pads is None or not any(pads)),
        example=_yaml(BACKPROP, data=[1, 1, 3], kernel=[1, 1, 1, 3], output_shape=[3], auto_pad="valid")),
    Disagreement(
        id="backprop-output-shape-beyond-full-zeros-at-end",
        spec_note="sn-output-shape-beyond-full",
        what="with an output_shape larger than the full result (total_padding < 0), CPU crops nothing and "
             "appends every extra zero at the end (pads_begin 0 on that axis); the spec formula gives "
             "pads_begin = total_padding // 2 < 0 (zeros at the front too)",
        applies=lambda case: (case.op == BACKPROP and case.output_shape is not None
                              and min(case.geometry().pads_begin) < 0),
        explains=lambda case, pads, error: error is None and (
            pads is None or pads == tuple(max(0, begin) for begin in case.geometry().pads_begin)),
        example=_yaml(BACKPROP, data=[1, 1, 3], kernel=[1, 1, 1, 3], output_shape=[7], auto_pad="same_lower")),
    Disagreement(
        id="backprop-groups-1-compile-error",
        spec_note="dev-backprop-groups-1",
        what="GroupConvolutionBackpropData with GROUPS = 1 and C_IN*C_OUT > 1 does not compile on CPU: "
             "oneDNN 'deconvolution: dimension src:1 is inconsistent with weights:2'",
        applies=lambda case: (case.op == BACKPROP and case.kernel_shape[0] == 1
                              and case.kernel_shape[1] * case.kernel_shape[2] > 1),
        explains=lambda case, pads, error: error is not None and "deconvolution" in error,
        example=_yaml(BACKPROP, data=[1, 1, 3], kernel=[1, 1, 2, 3])),
]


def _classify(classes, case: Case) -> Disagreement | None:
    return next((known for known in classes if known.applies(case)), None)


# --- 1. shape inference --------------------------------------------------------

def openvino_node(case: Case, kernel: np.ndarray | None = None):
    """``case``'s op built with openvino.opset1 (kernel and output_shape as Constants)."""
    data = opset1.parameter(list(case.data_shape), np.float32, name="data")
    weights = opset1.constant(np.zeros(case.kernel_shape, np.float32) if kernel is None else kernel)
    attributes = dict(strides=list(case.strides), pads_begin=list(case.pads_begin),
                      pads_end=list(case.pads_end), dilations=list(case.dilations), auto_pad=case.auto_pad)
    if case.op == CONV:
        return data, opset1.group_convolution(data, weights, **attributes)
    output_shape = None if case.output_shape is None else opset1.constant(np.array(case.output_shape, np.int64))
    return data, opset1.group_convolution_backprop_data(
        data, weights, output_shape=output_shape, output_padding=list(case.output_padding), **attributes)


def openvino_output_shape(case: Case):
    """OpenVINO's inferred output shape: a tuple when static, else the PartialShape's text."""
    _, node = openvino_node(case)
    shape = node.get_output_partial_shape(0)
    return tuple(dim.get_length() for dim in shape) if shape.is_static else str(shape)


def _unexplained(config: OpConfig, harness, openvino, detail: str = "") -> str:
    return (f"OpenVINO and the harness disagree and no known class explains it\n"
            f"harness: {harness}\nOpenVINO: {openvino}{detail}\n{config.yaml()}")


@given(config=op_configs())
def test_shape_inference_agrees_with_harness(config):
    case = config.case()
    harness = case.geometry().output_shape
    openvino = openvino_output_shape(case)
    if openvino == harness:
        return
    known = _classify(SHAPE_INFERENCE_DISAGREEMENTS, case)
    assert known is not None, _unexplained(config, harness, openvino)
    event(f"known disagreement: {known.id}")
    note(f"{known.id} (docs/spec-notes.md#{known.spec_note}): harness {harness}, OpenVINO {openvino}")


# --- 2. effective pads on CPU --------------------------------------------------

def _probe_inputs(case: Case) -> tuple[np.ndarray, np.ndarray]:
    """Data = flat spatial index + 1 in every channel; kernel = 1 at tap 0 of input channel 0."""
    spatial = case.data_shape[2:]
    index = np.arange(1, int(np.prod(spatial)) + 1, dtype=np.float32).reshape(spatial)
    data = np.broadcast_to(index, case.data_shape).copy()
    kernel = np.zeros(case.kernel_shape, np.float32)
    origin = (0,) * case.spatial_rank
    if case.op == CONV:                      # [G, C_OUT, C_IN, ...]: every output channel reads C_IN 0
        kernel[(slice(None), slice(None), 0) + origin] = 1
    else:                                    # [G, C_IN, C_OUT, ...]: C_IN 0 writes every output channel
        kernel[(slice(None), 0, slice(None)) + origin] = 1
    return data, kernel


def _decode_pads_begin(case: Case, output: np.ndarray) -> tuple[int, ...] | None:
    """pads_begin the CPU used, from one nonzero output element (None if all are zero).

    GroupConvolution: out[o] = x[o*s - pads_begin]; BackpropData: out[i*s - pads_begin] = x[i].
    """
    plane = output[0, 0]
    nonzero = np.argwhere(plane != 0)
    if not len(nonzero):
        return None
    position = nonzero[0]
    source = np.unravel_index(int(plane[tuple(position)]) - 1, case.data_shape[2:])
    if case.op == CONV:
        return tuple(int(o * s - i) for o, i, s in zip(position, source, case.strides))
    return tuple(int(i * s - o) for o, i, s in zip(position, source, case.strides))


_IR_DIR = None


def run_on_cpu(case: Case, data: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """Render ``case`` to IR exactly as the suite does and run it on CPU (f32 inference precision)."""
    global _IR_DIR
    _IR_DIR = _IR_DIR or tempfile.mkdtemp(prefix="shape-inference-ir-")
    ir = render(case, Inputs(data, kernel), _IR_DIR)
    return run(ir, data, Target("CPU", "f32")).output


# Each example compiles a model: a fifth of the profile's examples (quick: 20, deep: 1000).
# Negative pads are left to cases/spec_notes/negative_pads*.yaml: CPU mostly refuses to compile them.
@settings(max_examples=max(20, settings.default.max_examples // 5))
@given(config=op_configs(negative_pads=False))
def test_cpu_effective_pads_agree_with_harness(config):
    case = config.case()
    data, kernel = _probe_inputs(case)
    with torch.no_grad():
        expected = oracle.apply_op(case, torch.from_numpy(data.astype(np.float64)),
                                   torch.from_numpy(kernel.astype(np.float64))).numpy()
    error, output, pads = None, None, None
    try:
        output = run_on_cpu(case, data, kernel)
    except RuntimeError as failure:
        error = " ".join(str(failure).split())
    if output is not None and output.shape == expected.shape and np.array_equal(output, expected):
        return
    if output is not None:
        pads = _decode_pads_begin(case, output)
    observed = (f"compile error: {error}" if error else
                f"output shape {output.shape}, pads_begin {pads}")
    harness = f"output shape {expected.shape}, pads_begin {case.geometry().pads_begin}"
    candidates = [known for known in CPU_DISAGREEMENTS if known.applies(case)]
    assert candidates, _unexplained(config, harness, observed)
    # A case may be in several classes (e.g. GROUPS=1 with output_shape): one must explain what was seen.
    known = next((known for known in candidates if known.explains(case, pads, error)), None)
    assert known is not None, _unexplained(
        config, harness, observed, "\nin class " + ", ".join(known.id for known in candidates)
        + ", but not as described: " + "; ".join(known.what for known in candidates))
    event(f"known disagreement: {known.id}")
    note(f"{known.id} (docs/spec-notes.md#{known.spec_note}): harness {harness}; CPU {observed}")


@given(config=edge_configs())
def test_shape_inference_agrees_with_harness_at_the_edges(config):
    """output_padding >= max(stride, dilation), crops past the full result, output_shape beyond it,
    output sizes of 1, strides of 2**40: OpenVINO's shape inference gives the harness's shapes."""
    case = config.case()
    assert openvino_output_shape(case) == case.geometry().output_shape, _unexplained(
        config, case.geometry().output_shape, openvino_output_shape(case))


@settings(max_examples=max(60, settings.default.max_examples // 5))
@given(config=edge_configs(huge_strides=False))
# Found by this test (2026-12-02): output_padding >= stride with an output_shape, one tap, stride 1.
@example(config=OpConfig(BACKPROP, {"data": [1, 1, 1], "kernel": [1, 1, 1, 1], "strides": [1], "pads_begin": [2],
                                    "pads_end": [2], "output_padding": [2], "output_shape": [1]}))
def test_cpu_effective_pads_agree_with_harness_at_the_edges(config):
    """The same edges on CPU (no 2**40 strides: they can kill the process, sn-huge-strides)."""
    test_cpu_effective_pads_agree_with_harness.hypothesis.inner_test(config)


# --- the classes still exist on the release they were seen on -------------------

@pytest.mark.parametrize("known", SHAPE_INFERENCE_DISAGREEMENTS + CPU_DISAGREEMENTS, ids=lambda known: known.id)
def test_known_disagreement_still_present(known):
    """Each class's example still disagrees on SEEN_ON; a fix in OpenVINO fails here: drop the class."""
    if release_of(openvino_version()) != SEEN_ON:
        pytest.skip(f"classes were recorded on OpenVINO {SEEN_ON}, this is {openvino_version()}")
    case = load_cases_text(known.example, f"<{known.id}>")[0]
    assert known.applies(case), f"{known.id}: its own example is not in the class"
    if known in SHAPE_INFERENCE_DISAGREEMENTS:
        assert openvino_output_shape(case) != case.geometry().output_shape, (
            f"{known.id} no longer reproduces: OpenVINO's shape inference now agrees; remove the class")
        return
    data, kernel = _probe_inputs(case)
    try:
        output = run_on_cpu(case, data, kernel)
    except RuntimeError as failure:
        assert known.explains(case, None, str(failure)), f"{known.id}: unexpected error {failure}"
        return
    with torch.no_grad():
        expected = oracle.apply_op(case, torch.from_numpy(data.astype(np.float64)),
                                   torch.from_numpy(kernel.astype(np.float64))).numpy()
    assert output.shape != expected.shape or not np.array_equal(output, expected), (
        f"{known.id} no longer reproduces: the CPU now agrees with the spec; remove the class")
    assert known.explains(case, _decode_pads_begin(case, output), None)


def _backprop_with_runtime_output_shape(dynamic_data: bool):
    """data [1,1,3] (or [1,1,?]), kernel [1,1,1,3] = [1,0,0], output_shape an i64 Parameter."""
    data = opset1.parameter([1, 1, -1 if dynamic_data else 3], np.float32, name="data")
    kernel = opset1.constant(np.array([1, 0, 0], np.float32).reshape(1, 1, 1, 3))
    output_shape = opset1.parameter([1], np.int64, name="output_shape")
    node = opset1.group_convolution_backprop_data(data, kernel, [1], output_shape, [0], [0], [1], "same_upper", [0])
    return ov.Model([node], [data, output_shape])


def test_output_shape_as_runtime_input_on_cpu():
    """sn-output-shape-input: with static data the CPU cannot compile it; with dynamic data it runs.

    Pinned to SEEN_ON: if the static case starts compiling, this fails; record the fix in
    docs/spec-notes.md#sn-output-shape-input.
    """
    if release_of(openvino_version()) != SEEN_ON:
        pytest.skip(f"recorded on OpenVINO {SEEN_ON}, this is {openvino_version()}")
    core = ov.Core()
    config = {"INFERENCE_PRECISION_HINT": "f32"}
    with pytest.raises(RuntimeError, match="Destination memory is undefined"):
        core.compile_model(_backprop_with_runtime_output_shape(dynamic_data=False), "CPU", config)
    compiled = core.compile_model(_backprop_with_runtime_output_shape(dynamic_data=True), "CPU", config)
    x = np.array([1, 2, 3], np.float32).reshape(1, 1, 3)
    # full = [1, 2, 3, 0, 0]; output_shape 3 -> total 2, same_upper: pads_begin = 1 -> [2, 3, 0]
    output = compiled({0: x, 1: np.array([3], np.int64)})[0]
    np.testing.assert_array_equal(output.ravel(), [2, 3, 0])
