"""Stage 2: ``Case`` + ``Inputs`` -> OpenVINO IR v11 (.xml + .bin).

The IR is assembled with lxml from the layer skeletons in ``ir_templates/``:
Parameter(data) -> Const(kernel) [-> Const(output_shape)] -> op [-> post-ops] -> Result,
in the case's element type; with ``kernel_input``/``output_shape_input:
parameter`` those inputs are Parameters fed at inference time, and dynamic
data dims (``-1``, ``1..8``) are written as IR v11 writes them.
Nothing is built by string concatenation, so names and values are escaped by
lxml. The rendered pair is what the runtime stage reads and runs.
"""
from __future__ import annotations

import copy
import hashlib
import os
import threading
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from lxml import etree

from . import element_types, ops, post_ops
from .case import Case
from .inputs import NUMPY_DTYPES, Inputs

DATA_INPUT_NAME = "data"
OUTPUT_NAME = "output"

KERNEL_INPUT_NAME = "kernel"
OUTPUT_SHAPE_INPUT_NAME = "output_shape"

# IR port precision names per element type (the <data element_type> uses the short name).
_PORT_PRECISIONS = element_types.PORT_PRECISIONS


def element_bytes(array: np.ndarray, element_type: str) -> bytes:
    """``array`` as ``element_type``'s little-endian bytes (bf16: the upper half of each float32)."""
    if element_type == "bf16":
        bits = np.ascontiguousarray(array, dtype=np.float32).view(np.uint32)
        if np.any(bits & 0xFFFF):
            raise ValueError("bf16 weights must hold bf16 values (element_types.round_to_bf16)")
        return (bits >> 16).astype("<u2").tobytes()
    return np.ascontiguousarray(array, dtype=NUMPY_DTYPES[element_type]).tobytes()


def templates_dir() -> Path:
    """``ir_templates/``: inside the installed package, or at the repository root."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "ir_templates", here.parent / "ir_templates"):
        if (candidate / "net.xml").is_file():
            return candidate
    raise FileNotFoundError(f"ir_templates/ not found next to {here}")


# Templates are ours, but parse them as strictly as any untrusted XML.
_PARSER = etree.XMLParser(remove_blank_text=True, remove_comments=True, resolve_entities=False,
                          no_network=True, huge_tree=False, load_dtd=False)


def parse_xml(path: Path | str) -> etree._ElementTree:
    """Parse an XML file with entities, DTD loading and network off; a document that
    declares a DOCTYPE (where entities live: billion laughs, external entities) is refused."""
    tree = etree.parse(str(path), _PARSER)
    if tree.docinfo.doctype or tree.docinfo.internalDTD is not None:
        raise ValueError(f"{path}: a DOCTYPE / entity declaration is not allowed in IR XML")
    return tree


@lru_cache(maxsize=None)
def _template(name: str) -> etree._Element:
    return parse_xml(templates_dir() / f"{name}.xml").getroot()


@dataclass(frozen=True)
class RuntimeInput:
    """One Parameter of a rendered IR, as rendered: what each inference must feed it."""

    name: str                   # the Parameter's (and its port's) name
    element_type: str           # its IR element type (element_types.py)
    dims: tuple                 # as the IR declares them: ints, or "-1" / "low..high" for dynamic dims
    # The value fed at every inference when the op's own (an output_shape Parameter); None for the
    # data and the kernel, which come from the case's ``Inputs``.
    value: tuple | None = None


@dataclass(frozen=True)
class RenderedIR:
    """A rendered IR pair on disk, the names the runtime needs and its runtime inputs."""

    xml_path: Path
    bin_path: Path
    digest: str                 # sha256 of xml + bin: the identity of what ran
    input_name: str = DATA_INPUT_NAME
    output_name: str = OUTPUT_NAME
    element_type: str = "f32"
    # The IR's Parameters in order (data first): built by ``render`` as it writes them.
    runtime_inputs: tuple[RuntimeInput, ...] = (RuntimeInput(DATA_INPUT_NAME, "f32", ()),)

    @property
    def parameters(self) -> tuple[str, ...]:
        """The names of the inputs fed at inference time, in order."""
        return tuple(item.name for item in self.runtime_inputs)

    @property
    def input_types(self) -> tuple[tuple[str, str], ...]:
        """(name, element type) of every runtime input: how the runtime makes its tensors."""
        return tuple((item.name, item.element_type) for item in self.runtime_inputs)

    def feed(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """What one inference is fed, by Parameter name in order: the data (and the kernel when it
        is a Parameter) from ``inputs``, the op's own runtime inputs their rendered values."""
        return runtime_feed(self.runtime_inputs, inputs)


def runtime_feed(runtime_inputs: tuple[RuntimeInput, ...], inputs: Inputs, prefix: str = "") -> dict[str, np.ndarray]:
    """The feed of ``runtime_inputs`` (named with ``prefix``): data and kernel from ``inputs``, the
    op's own runtime inputs their rendered values."""
    arrays = {prefix + DATA_INPUT_NAME: inputs.data, prefix + KERNEL_INPUT_NAME: inputs.kernel}
    return {item.name: arrays[item.name] if item.value is None
            else np.asarray(item.value, dtype=NUMPY_DTYPES[item.element_type])
            for item in runtime_inputs}


class _Graph:
    """Accumulates layers (from templates), weights and edges for one net."""

    def __init__(self, name: str):
        self.runtime_inputs: list[RuntimeInput] = []   # every Parameter added, in order
        self.net = copy.deepcopy(_template("net"))
        self.net.set("name", name)
        self.layers = self.net.find("layers")
        self.edges = self.net.find("edges")
        self.weights = bytearray()

    def add(self, template: str, name: str, attributes: dict[str, str] | None = None) -> etree._Element:
        layer = copy.deepcopy(_template(template))
        layer.set("id", str(len(self.layers)))
        layer.set("name", name)
        data = layer.find("data")
        for key, value in (attributes or {}).items():
            data.set(key, value)
        self.layers.append(layer)
        return layer

    def add_weights(self, array: np.ndarray, element_type: str) -> dict[str, str]:
        offset = len(self.weights)
        blob = element_bytes(array, element_type)
        self.weights += blob
        return {"offset": str(offset), "size": str(len(blob))}

    def connect(self, source: etree._Element, target: etree._Element, target_port: int) -> None:
        source_port = source.find("output/port").get("id")
        etree.SubElement(self.edges, "edge", {
            "from-layer": source.get("id"), "from-port": source_port,
            "to-layer": target.get("id"), "to-port": str(target_port)})


def _set_port(port: etree._Element, element_type: str, dims) -> None:
    port.set("precision", _PORT_PRECISIONS[element_type])
    for dim in dims:
        etree.SubElement(port, "dim").text = str(dim)


def _constant(graph: _Graph, name: str, array: np.ndarray, element_type: str) -> etree._Element:
    layer = graph.add("Const", name, {"element_type": element_type, "shape": _join(array.shape),
                                      **graph.add_weights(array, element_type)})
    _set_port(layer.find("output/port"), element_type, array.shape)
    return layer


def _parameter(graph: _Graph, name: str, element_type: str, dims, value: np.ndarray | None = None) -> etree._Element:
    """A Parameter layer, recorded as one of the graph's runtime inputs (``value``: what it is always fed)."""
    graph.runtime_inputs.append(RuntimeInput(name, element_type, tuple(dims),
                                             None if value is None else tuple(value.tolist())))
    layer = graph.add("Parameter", name, {"shape": _join(dims), "element_type": element_type})
    _set_port(layer.find("output/port"), element_type, dims)
    layer.find("output/port").set("names", name)
    return layer


def _join(values) -> str:
    return ",".join(str(v) for v in values)


def output_dims(case: Case) -> tuple[str, ...]:
    """The op's output dims as the IR declares them: -1 where a dynamic input dim (or a
    runtime output_shape) makes them unknown until inference."""
    dims = [str(d) for d in case.geometry().output_shape]
    if case.data_dims is not None:
        if not case.data_dims[0].isdigit():
            dims[0] = "-1"
        for axis, dim in enumerate(case.data_dims[2:], start=2):
            if not dim.isdigit() and case.output_shape is None:
                dims[axis] = "-1"
    if case.output_shape_input == "parameter":
        dims[2:] = ["-1"] * case.spatial_rank
    return tuple(dims)


def render_bytes(case: Case, inputs: Inputs) -> tuple[bytes, bytes]:
    """The IR XML document and the weights blob for ``case``, without touching disk."""
    xml, weights, _ = _render(case, inputs)
    return xml, weights


def _render(case: Case, inputs: Inputs) -> tuple[bytes, bytes, tuple[RuntimeInput, ...]]:
    """``render_bytes`` and the runtime inputs (Parameters) the document declares."""
    graph = _Graph(case.id)
    add_case(graph, case, inputs)
    return _serialize(graph)


@dataclass(frozen=True)
class Subgraph:
    """Where one case's subgraph is in a graph: its name prefix, its op node's name, its op's output
    tensor's name, its runtime inputs (Parameters, with prefixed names) and its Result layer's name
    (what the subgraph outputs: the op's output, or the last post-op's)."""

    prefix: str
    op: str
    output: str
    runtime_inputs: tuple[RuntimeInput, ...]
    result: str

    def feed(self, inputs: Inputs) -> dict[str, np.ndarray]:
        """What one inference feeds this subgraph (``RenderedIR.feed``, by its prefixed names)."""
        return runtime_feed(self.runtime_inputs, inputs, self.prefix)


def add_case(graph: _Graph, case: Case, inputs: Inputs, prefix: str = "") -> Subgraph:
    """Append ``case``'s independent subgraph (Parameter(data) -> Const/Parameter inputs -> op
    [-> post-ops] -> Result) to ``graph``, every layer and tensor name prefixed with ``prefix`` (one
    IR may hold several cases: ``render_batch``). The one place a case's graph is built."""
    first_input = len(graph.runtime_inputs)
    element_type = case.element_type
    data_dims = case.data_dims if case.data_dims is not None else case.data_shape
    parameter = _parameter(graph, prefix + DATA_INPUT_NAME, element_type, data_dims)
    if case.kernel_input == "parameter":
        kernel = _parameter(graph, prefix + KERNEL_INPUT_NAME, element_type, case.kernel_shape)
    else:
        kernel = _constant(graph, prefix + KERNEL_INPUT_NAME, inputs.kernel, element_type)
    op_inputs = [(parameter, data_dims, element_type), (kernel, case.kernel_shape, element_type)]
    operation = ops.get(case.op)
    for name, value, fed in operation.extra_inputs(case):
        value_type = element_types.of_numpy(value.dtype)
        if fed:
            extra = _parameter(graph, prefix + name, value_type, value.shape, value)
        else:
            extra = _constant(graph, prefix + name, value, value_type)
        op_inputs.append((extra, value.shape, value_type))

    op = graph.add(operation.template, prefix + "op", operation.attributes(case))
    ports = op.find("input").findall("port")
    for port, (_, dims, port_type) in zip(ports, op_inputs):
        _set_port(port, port_type, dims)
    for unused in ports[len(op_inputs):]:
        op.find("input").remove(unused)
    out_port = op.find("output/port")
    out_port.set("id", str(len(op_inputs)))  # ports are numbered inputs first, then outputs
    output_shape = output_dims(case)
    _set_port(out_port, element_type, output_shape)
    out_port.set("names", prefix + OUTPUT_NAME)
    for index, (source, _, _) in enumerate(op_inputs):
        graph.connect(source, op, index)

    last = add_post_ops(graph, case, op, output_shape, prefix)   # the op itself without post-ops
    result = graph.add("Result", prefix + "result")
    _set_port(result.find("input/port"), element_type, output_shape)
    graph.connect(last, result, 0)
    return Subgraph(prefix, prefix + "op", prefix + OUTPUT_NAME, tuple(graph.runtime_inputs[first_input:]),
                    prefix + "result")


def add_post_ops(graph: _Graph, case: Case, source: etree._Element, dims, prefix: str = "") -> etree._Element:
    """Add ``case``'s post-op layers (conformance/post_ops.py: their kinds, values and layer names,
    each prefixed with ``prefix`` as ``add_case``'s) after ``source`` (the op's layer, output
    ``dims``) to ``graph``; returns the last layer, which the Result takes (``source`` itself
    without post-ops)."""
    if not case.post_ops:
        return source
    element_type = case.element_type
    channel_dims = (1, case.geometry().output_shape[1]) + (1,) * case.spatial_rank

    def binary(template, name, left, right, right_dims):
        layer = graph.add(template, name, {"auto_broadcast": "numpy"})
        ports = layer.find("input").findall("port")
        _set_port(ports[0], element_type, dims)
        _set_port(ports[1], element_type, right_dims)
        _set_port(layer.find("output/port"), element_type, dims)
        graph.connect(left, layer, 0)
        graph.connect(right, layer, 1)
        return layer

    def channel_constant(name, array):
        return _constant(graph, name, array.reshape(channel_dims), element_type)

    last = source
    for index, (post_op, tensors) in enumerate(zip(case.post_ops, post_ops.values(case))):
        names = [prefix + name for name in post_op.layers(index)]
        if post_op.kind == "bias":
            last = binary("Add", names[0], last, channel_constant(f"{names[0]}.values", tensors["shift"]),
                          channel_dims)
        elif post_op.kind == "batch_norm":
            last = binary("Multiply", names[0], last, channel_constant(f"{names[0]}.values", tensors["scale"]),
                          channel_dims)
            last = binary("Add", names[1], last, channel_constant(f"{names[1]}.values", tensors["shift"]),
                          channel_dims)
        elif post_op.kind == "sum":
            shape = tensors["addend"].shape
            addend = _parameter(graph, f"{names[0]}.input", element_type, shape, value=tensors["addend"])
            last = binary("Add", names[0], last, addend, shape)
        else:
            attributes = {"min": repr(post_op.minimum), "max": repr(post_op.maximum)} if post_op.kind == "clamp" else {}
            layer = graph.add({"relu": "ReLU", "clamp": "Clamp"}[post_op.kind], names[0], attributes)
            _set_port(layer.find("input/port"), element_type, dims)
            _set_port(layer.find("output/port"), element_type, dims)
            graph.connect(last, layer, 0)
            last = layer
    return last


def _serialize(graph: _Graph) -> tuple[bytes, bytes, tuple[RuntimeInput, ...]]:
    xml = etree.tostring(graph.net, pretty_print=True, xml_declaration=True, encoding="utf-8")
    return xml, bytes(graph.weights), tuple(graph.runtime_inputs)


def batch_prefix(index: int) -> str:
    """The name prefix of a batch's ``index``-th member (``m3_op``: no member's names extend another's)."""
    return f"m{index}_"


def render_batch(members) -> tuple[bytes, bytes, list[Subgraph]]:
    """One IR (XML, weights) holding every ``(case, inputs)`` of ``members`` as an independent
    subgraph with ``batch_prefix(index)`` names, and each member's ``Subgraph``. Not written to
    disk: the per-case IR (``render``) stays the artefact of record."""
    graph = _Graph("batch")
    subgraphs = [add_case(graph, case, inputs, batch_prefix(index)) for index, (case, inputs) in enumerate(members)]
    xml, weights, _ = _serialize(graph)
    return xml, weights, subgraphs


def render(case: Case, inputs: Inputs, directory: Path | str) -> RenderedIR:
    """Write ``case``'s IR to ``directory`` as ``<digest>.xml``/``.bin`` (reused if present)."""
    xml, weights, runtime_inputs = _render(case, inputs)
    digest = hashlib.sha256(xml + b"\0" + weights).hexdigest()[:20]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    xml_path, bin_path = directory / f"{digest}.xml", directory / f"{digest}.bin"
    if not (xml_path.exists() and bin_path.exists()):
        # Write-then-rename: parallel workers (and a session's lane thread) may render the same case at once.
        for path, content in ((bin_path, weights), (xml_path, xml)):
            temporary = path.with_suffix(f"{path.suffix}.{os.getpid()}.{threading.get_ident()}.tmp")
            temporary.write_bytes(content)
            os.replace(temporary, path)
    return RenderedIR(xml_path, bin_path, digest, element_type=case.element_type, runtime_inputs=runtime_inputs)
