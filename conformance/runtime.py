"""Stage 3: run a rendered IR on an OpenVINO device and record what ran.

A ``Target`` (``targets.py``) is a device string plus properties; the inference precision is
always set explicitly (this class of CPU silently runs f32 models in bf16
otherwise) and read back from the compiled model, so reports say what ran.
"""
from __future__ import annotations

import os
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from .settings import CPU_THREADS_VARIABLE  # noqa: F401 (re-exported)
from .targets import PRECISIONS, Target  # noqa: F401 (re-exported: the stages name them runtime.*)

if TYPE_CHECKING:  # annotations only: a release environment's worker imports this module without lxml
    from .render import RenderedIR


def cap_hides_native_precision(target: "Target", cpu=None) -> bool:
    """True when this CPU does the ``target.precision`` hint (bf16/f16) in hardware but the target's ISA
    cap (or the process's ``ONEDNN_MAX_CPU_ISA``) hides the features that do it: a state no real CPU is in,
    whose items are ``TargetUnavailable`` (``conformance.cpu``, NATIVE_PRECISION_FEATURES; ``cpu`` defaults
    to this machine)."""
    from .cpu import supports_precision_hint, supports_precision_natively, target_cap, this_cpu
    cpu, cap = cpu or this_cpu(), target_cap(target.isa)
    return (cap is not None and target.precision != "f32"
            and supports_precision_natively(cpu.features, target.precision)
            and not supports_precision_hint(cpu.effective(cap), target.precision))


class TargetUnavailable(Exception):
    """The device is not present, or refuses this configuration; the reason is the runtime's."""


class RuntimeRejected(RuntimeError):
    """OpenVINO raised while compiling or inferring a model the spec allows (the runtime's message)."""

    def __init__(self, stage: str, message: str, seconds: dict | None = None):
        self.stage, self.message = stage, message
        self.seconds = seconds or {}      # OpenVINO's time until it raised: {"read_seconds": ..., ...}
        super().__init__(stage, message, seconds)  # args as given: picklable across the worker pipe

    def __str__(self) -> str:
        return f"OpenVINO failed to {self.stage} the model: {self.message}"


@dataclass(frozen=True)
class RunResult:
    """The device's output and a record of how it was produced."""

    output: np.ndarray
    target_id: str
    device: str
    inference_precision: str          # as read back from the compiled model
    openvino_version: str
    layer_type: str | None            # the op's node in the runtime model (rt_info)
    primitive_type: str | None        # e.g. jit_avx512_f32, brgconv_avx2_f32
    runtime_precision: str | None
    compile_seconds: float            # 0 when the compiled model came from this process's cache
    infer_seconds: float
    extra: dict = field(default_factory=dict)
    outputs: tuple = ()                   # one output per feed, for a sequence of inferences
    output_precision: str | None = None   # the op node's outputPrecisions (rt_info)
    read_seconds: float = 0.0             # read_model (the IR frontend), before compiling

    @property
    def compute_precision(self) -> str:
        """The precision the op really computed in: its rt_info runtimePrecision, else the hint read back."""
        return _precision_name(self.runtime_precision or self.inference_precision)


@lru_cache(maxsize=1)
def openvino_api():
    """The module that holds OpenVINO's Python API: ``openvino`` (2023.1 on), ``openvino.runtime`` before.

    Releases before 2023.1 have no ``Core``/``Tensor``/``get_version`` at the top level;
    release environments (``conformance.releases``) run this module on them too.
    """
    import openvino
    if hasattr(openvino, "Core"):
        return openvino
    import openvino.runtime
    return openvino.runtime


@lru_cache(maxsize=1)
def core():
    """The process's one ``openvino.Core`` (creating it loads plugins; do it once), its CPU inference
    threads set from ``CONFORMANCE_CPU_THREADS`` when that is set (an xdist worker's share of the
    cores: plugin._share_cores; its OpenVINO worker process inherits it)."""
    created = openvino_api().Core()
    if os.environ.get(CPU_THREADS_VARIABLE):
        try:
            created.set_property("CPU", {"INFERENCE_NUM_THREADS": int(os.environ[CPU_THREADS_VARIABLE])})
        except RuntimeError:
            pass  # no CPU plugin: nothing to share
    return created


def openvino_version() -> str:
    """Full OpenVINO build string, e.g. ``2026.4.1-22982-e213a147257-releases/2026/4``."""
    return openvino_api().get_version()


# Runtime-model nodes that move or convert data around the op rather than compute it.
_DATA_MOVEMENT = ("Reorder", "Convert", "Input", "Output", "Const", "Parameter", "Result")


def op_node_info(compiled, nodes: list[tuple[list[str], dict[str, str]]], op_name: str,
                 data_name: str, graph: dict | None = None) -> dict[str, str]:
    """rt_info of the node executing the op (the plugin may rename, fuse or decompose it).

    Among the runtime nodes (``nodes``: ``runtime_nodes(compiled)``) that list ``op_name`` in
    ``originalLayersNames`` (or carry it as their name), the first that computes (not a Reorder or
    Convert) is the op's node; if the plugin decomposed the op into several computing nodes,
    ``nodes`` lists them all as ``layerType:primitiveType``. When none carries the op's name, the
    first computing node the op's data input (``data_name``) reaches. ``graph``: a dict kept per
    compiled model by a caller that looks up several ops (a batch), so the runtime model's
    consumer graph is built once.
    """
    def after_input():
        cache = graph if graph is not None else {}
        if "consumers" not in cache:
            cache["consumers"] = _consumer_graph(compiled)
        return _first_computing_after_input(*cache["consumers"], data_name)
    return op_info(nodes, op_name, after_input)


def runtime_nodes(compiled) -> list[tuple[list[str], dict[str, str]]]:
    """Every node of ``compiled``'s runtime model: (the original layer names it stands for, its rt_info),
    in execution order. Read once per compiled model: ``op_info`` looks ops up in it."""
    nodes = []
    for node in compiled.get_runtime_model().get_ordered_ops():
        info = node.get_rt_info()
        names = info["originalLayersNames"].astype(str).split(",") if "originalLayersNames" in info else []
        nodes.append((names + [node.get_friendly_name()], {key: info[key].astype(str) for key in info.keys()}))
    return nodes


def op_info(nodes: list[tuple[list[str], dict[str, str]]], op_name: str, fallback=None) -> dict[str, str]:
    """The rt_info of ``op_name``'s computing node among ``runtime_nodes`` (see ``op_node_info``);
    ``fallback()``: the candidate nodes' rt_info when no node carries the op's name."""
    matching = [info for names, info in nodes if op_name in names]
    if not matching:
        # Precision conversion (e.g. an i64 model run in i32/f32) renames the op "op.0".
        matching = [info for names, info in nodes if any(name.startswith(op_name + ".") for name in names)]
    if not matching and fallback is not None:
        # The plugin's transformations may rebuild the op's node under another name (a Multiply after
        # it folded into its weights): the op's node is then the first computing node the data reaches.
        matching = fallback()
    computing = [info for info in matching if info.get("layerType") not in _DATA_MOVEMENT] or matching
    if not computing:
        return {}
    primary = dict(computing[0])
    if len(computing) > 1:
        primary["nodes"] = ",".join(f"{info.get('layerType')}:{info.get('primitiveType')}" for info in computing)
    return primary


DATA_INPUT_NAME = "data"   # render.DATA_INPUT_NAME (render imports lxml; a release worker has none)


def _consumer_graph(compiled) -> tuple[list, dict[str, list]]:
    """The runtime model's nodes in execution order, and each node's consumers by its name."""
    ordered = compiled.get_runtime_model().get_ordered_ops()
    consumers: dict[str, list] = {}
    for node in ordered:
        for source in {port.get_source_output().get_node().get_friendly_name() for port in node.inputs()}:
            consumers.setdefault(source, []).append(node)
    return ordered, consumers


def _first_computing_after_input(ordered: list, consumers: dict[str, list], input_name: str) -> list[dict[str, str]]:
    """rt_info of the first node (``_consumer_graph``), following consumers from the Input
    ``input_name`` through data movement (Reorder, Convert), that computes; [] when there is none."""
    nodes = [node for node in ordered if node.get_friendly_name() == input_name]
    while nodes:
        info = nodes[0].get_rt_info()
        if info["layerType"].astype(str) not in _DATA_MOVEMENT:
            return [{key: info[key].astype(str) for key in info.keys()}]
        nodes = consumers.get(nodes[0].get_friendly_name(), [])
    return []


def computing_layers(model) -> set[str]:
    """The names of ``model``'s layers that compute (not a Parameter, Constant or Result): the op and
    its post-ops, as the IR names them (``read_model`` keeps the IR's layer names)."""
    return {node.get_friendly_name() for node in model.get_ordered_ops()
            if node.get_type_name() not in ("Parameter", "Constant", "Result")}


def computing_node_layers(nodes: list[tuple[list[str], dict[str, str]]]) -> list[set[str]]:
    """Per computing node of ``runtime_nodes`` (data movement left out), the IR layers it executes
    (its ``originalLayersNames``)."""
    return [set(info["originalLayersNames"].split(",")) for _, info in nodes
            if "originalLayersNames" in info and info.get("layerType") not in _DATA_MOVEMENT]


def fusion(layers: set[str], info: dict[str, str], node_layers: list[set[str]], op_name: str,
           prefix: str = "") -> dict:
    """Where the IR's other computing layers (post-ops) of one subgraph ran: ``fused_layers`` in the
    op's node (``info``: its rt_info), ``separate_layers`` in other computing nodes (``node_layers``:
    ``computing_node_layers``), each only when not empty; a layer in neither was folded away by the
    plugin's transformations. ``layers``: the model's ``computing_layers``; only those named with
    ``prefix`` (one member of a batch IR, ``render.batch_prefix``) count, and the record names them
    without it, as the member's own IR does, so a batch member's record compares with its solo run's."""
    layers = {name for name in layers if name.startswith(prefix)} - {op_name}
    if not layers:
        return {}
    fused = set(info.get("originalLayersNames", "").split(",")) & layers
    separate = set()
    for names in node_layers:
        separate |= (names & layers) - fused
    return {key: sorted(name[len(prefix):] for name in names)
            for key, names in (("fused_layers", fused), ("separate_layers", separate)) if names}


def _as_tensor(array: np.ndarray, element_type: str):
    """A numpy array as an input tensor of ``element_type`` (bf16 arrays are float32 holders)."""
    ov = openvino_api()
    if element_type == "bf16" and array.dtype == np.float32:
        bits = (np.ascontiguousarray(array).view(np.uint32) >> 16).astype(np.uint16)
        return ov.Tensor(bits, list(array.shape), ov.Type.bf16)
    return array


def _as_array(tensor, copy: bool) -> np.ndarray:
    """An output tensor as numpy (bf16 -> float32: ``tensor.data`` would misread it as float16)."""
    if str(tensor.element_type) in ("<Type: 'bfloat16'>", "bf16"):
        bits = tensor.data.view(np.uint16).astype(np.uint32) << 16
        return bits.view(np.float32)
    return tensor.data.copy() if copy else tensor.data


# Compiled models of small IRs are kept (keyed by IR digest and target), so an IR
# that recurs in a session (the same case listed twice, re-runs from the API) is
# compiled once. Large ones are not: a compiled full-size model holds gigabytes.
COMPILED_CACHE_SIZE = 16
COMPILED_CACHE_MAX_OUTPUT_ELEMENTS = 1 << 22
_COMPILED: OrderedDict = OrderedDict()   # key -> (compiled model, op rt_info, inference precision, extra)


@lru_cache(maxsize=1)
def _available_devices() -> tuple[str, ...]:
    return tuple(core().available_devices)


def _compile(ir: RenderedIR, target: Target, op_name: str):
    """(compiled, rt_info, precision, extra, read seconds, compile seconds); from the cache when there."""
    key = (ir.digest, target.device, tuple(sorted(target.config().items())), op_name)
    if key in _COMPILED:
        _COMPILED.move_to_end(key)
        return (*_COMPILED[key], 0.0, 0.0)
    if cap_hides_native_precision(target):
        # On a CPU that supports the hint, the CPU plugin decides bf16/f16 support from cpuid, which the
        # cap does not hide, so it picks kernels the capped oneDNN cannot create: a static model does not
        # compile ("object is not initialized"); a dynamic one compiles and runs 'undef_bf16' kernels that
        # return wrong outputs or crash, and leave the worker process broken for the items after them
        # (seen on an AMD Zen 5: CPU-f32-avx2 items crashing after CPU-bf16-avx2 ones in the same worker,
        # right when run alone). No real CPU is in this state: one without those features runs the hint
        # in f32. Not a spec deviation, and nothing here is worth running.
        from .cpu import target_cap   # the target's own cap, else the process's ONEDNN_MAX_CPU_ISA
        raise TargetUnavailable(
            f"{target.id}: the {target.precision} hint under ONEDNN_MAX_CPU_ISA={target_cap(target.isa).upper()} is a state "
            f"no real CPU is in: the ISA cap hides bf16/f16 from oneDNN but not from the CPU plugin's own cpuid "
            f"check (static models do not compile; dynamic ones run kernels that are wrong or crash)")
    ov_core = core()
    started = time.perf_counter()
    model = ov_core.read_model(str(ir.xml_path), str(ir.bin_path))
    read_at = time.perf_counter()
    try:
        compiled = ov_core.compile_model(model, target.device, target.config())
    except RuntimeError as error:
        message = str(error).strip()
        if "Unsupported" in message or "not supported" in message.lower():
            raise TargetUnavailable(f"{target.id}: {_last_line(message)}") from None
        raise RuntimeRejected("compile", _last_line(message), {
            "read_seconds": read_at - started, "compile_seconds": time.perf_counter() - read_at}) from None
    compiled_at = time.perf_counter()
    nodes = runtime_nodes(compiled)
    info = op_node_info(compiled, nodes, op_name, DATA_INPUT_NAME)
    try:
        precision = str(compiled.get_property("INFERENCE_PRECISION_HINT"))
    except RuntimeError:
        precision = target.precision
    entry = (compiled, info, precision, {**_extra(compiled, info), **fusion(computing_layers(model), info, computing_node_layers(nodes), op_name)})
    shape = compiled.output(0).get_partial_shape()
    if shape.is_static and int(np.prod([dim.get_length() for dim in shape])) <= COMPILED_CACHE_MAX_OUTPUT_ELEMENTS:
        _COMPILED[key] = entry
        while len(_COMPILED) > COMPILED_CACHE_SIZE:
            _COMPILED.popitem(last=False)
    return (*entry, read_at - started, compiled_at - read_at)


def run(ir: RenderedIR, data, target: Target, op_name: str = "op") -> RunResult:
    """Read ``ir`` from disk, compile it for ``target`` (or reuse it), infer, and describe the run.

    ``data`` is the data tensor, or a sequence of feeds (``{input name: array}``)
    inferred one after the other on the same compiled model (dynamic shapes,
    runtime weights); ``RunResult.outputs`` holds one output per feed.
    """
    feeds = [{ir.input_name: data}] if isinstance(data, np.ndarray) else list(data)
    require_device(target)
    compiled, info, precision, extra, read_seconds, compile_seconds = _compile(ir, target, op_name)
    compiled_at = time.perf_counter()
    types = dict(ir.input_types)   # each runtime input's element type, as rendered
    # A fresh request per run: the returned output is a view of this request's output tensor.
    request = compiled.create_infer_request()
    outputs = []
    for feed in feeds:
        try:
            # share_inputs: no copy of the data (the spec's 3D examples feed ~1 GB).
            request.infer(input_tensors(feed, types), **_sharing_inputs(request))
        except RuntimeError as error:
            raise RuntimeRejected("infer", _last_line(str(error).strip()), {
                "read_seconds": read_seconds, "compile_seconds": compile_seconds,
                "infer_seconds": time.perf_counter() - compiled_at}) from None
        # The output is a view of OpenVINO's output tensor, not a copy (2.9 GB for the 3D
        # examples): the array keeps the tensor's memory alive after the request is gone.
        # A sequence of inferences reuses that tensor, so there every output is copied.
        outputs.append(_as_array(request.get_tensor(compiled.output(0)), copy=len(feeds) > 1))
    finished = time.perf_counter()
    return RunResult(
        output=outputs[0], target_id=target.id, device=target.device,
        inference_precision=_precision_name(precision), openvino_version=openvino_version(),
        layer_type=info.get("layerType"), primitive_type=info.get("primitiveType"),
        runtime_precision=info.get("runtimePrecision"),
        compile_seconds=compile_seconds, infer_seconds=finished - compiled_at,
        extra=dict(extra), read_seconds=read_seconds,
        outputs=tuple(outputs), output_precision=info.get("outputPrecisions"))


def require_device(target: Target) -> None:
    """Raise ``TargetUnavailable`` when OpenVINO does not see ``target``'s device."""
    device_root = target.device.split(":")[0].split(".")[0]
    if device_root not in ("AUTO", "HETERO", "MULTI", "BATCH") and not any(
            available.split(".")[0] == device_root for available in _available_devices()):
        raise TargetUnavailable(f"device {target.device} is not available "
                                f"(OpenVINO sees: {', '.join(_available_devices())})")


def input_tensors(feed: dict, types: dict[str, str]) -> dict:
    """One inference's inputs (``{name: array}``) as OpenVINO takes them, each in its element type
    as rendered (``types``: name -> element type, ``RenderedIR.input_types``)."""
    return {name: _as_tensor(np.ascontiguousarray(array), types[name]) for name, array in feed.items()}


def inference_precision(compiled, target: Target) -> str:
    """The INFERENCE_PRECISION_HINT read back from ``compiled`` (the target's, if it has none)."""
    try:
        return _precision_name(str(compiled.get_property("INFERENCE_PRECISION_HINT")))
    except RuntimeError:
        return _precision_name(target.precision)


def _sharing_inputs(request) -> dict[str, bool]:
    """``infer``'s keyword for not copying the inputs: ``share_inputs`` (2023.1 on), ``shared_memory`` before."""
    import inspect
    try:
        parameters = inspect.signature(type(request).infer).parameters
    except (TypeError, ValueError):
        return {"share_inputs": True}
    return {"shared_memory": True} if "share_inputs" not in parameters and "shared_memory" in parameters \
        else {"share_inputs": True}


def _extra(compiled, info: dict[str, str]) -> dict:
    """What else says what ran: the devices AUTO/HETERO/MULTI chose, a decomposed op's nodes."""
    extra = {"nodes": info["nodes"]} if "nodes" in info else {}
    try:
        extra["execution_devices"] = [str(device) for device in compiled.get_property("EXECUTION_DEVICES")]
    except RuntimeError:
        pass
    return extra


def _last_line(message: str) -> str:
    """OpenVINO's exceptions nest 'Exception from ...' lines; the last non-empty line is the reason,
    prefixed by the check that failed when there is one."""
    lines = [line.strip() for line in message.splitlines() if line.strip()]
    checks = [line for line in lines if line.startswith("Check ")]
    reason = lines[-1] if lines else message
    return f"{checks[-1]} {reason}" if checks and checks[-1] != reason else reason


def _precision_name(value: str) -> str:
    """``<Type: 'float32'>``/``f32``/``float32`` (``fp32`` before 2023.1) -> ``f32``."""
    names = {"float32": "f32", "bfloat16": "bf16", "float16": "f16", "f32": "f32", "bf16": "bf16", "f16": "f16",
             "fp32": "f32", "fp16": "f16"}
    for long_name, short in names.items():
        if long_name in value.lower():
            return short
    return value.strip().lower()
