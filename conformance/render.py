"""Stage 2: ``Case`` + ``Inputs`` -> OpenVINO IR v11 (.xml + .bin).

The IR is assembled with lxml from the layer skeletons in ``ir_templates/``:
Parameter(data) -> Const(kernel) [-> Const(output_shape)] -> op -> Result,
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
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from lxml import etree

from . import element_types, ops
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
            raise ValueError("bf16 weights must hold bf16 values (inputs.round_to_bf16)")
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
        arrays = {DATA_INPUT_NAME: inputs.data, KERNEL_INPUT_NAME: inputs.kernel}
        return {item.name: arrays[item.name] if item.value is None
                else np.asarray(item.value, dtype=NUMPY_DTYPES[item.element_type])
                for item in self.runtime_inputs}


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
    element_type = case.element_type
    data_dims = case.data_dims if case.data_dims is not None else case.data_shape
    parameter = _parameter(graph, DATA_INPUT_NAME, element_type, data_dims)
    if case.kernel_input == "parameter":
        kernel = _parameter(graph, KERNEL_INPUT_NAME, element_type, case.kernel_shape)
    else:
        kernel = _constant(graph, KERNEL_INPUT_NAME, inputs.kernel, element_type)
    op_inputs = [(parameter, data_dims, element_type), (kernel, case.kernel_shape, element_type)]
    operation = ops.get(case.op)
    for name, value, fed in operation.extra_inputs(case):
        value_type = element_types.of_numpy(value.dtype)
        if fed:
            extra = _parameter(graph, name, value_type, value.shape, value)
        else:
            extra = _constant(graph, name, value, value_type)
        op_inputs.append((extra, value.shape, value_type))

    op = graph.add(operation.template, "op", operation.attributes(case))
    ports = op.find("input").findall("port")
    for port, (_, dims, port_type) in zip(ports, op_inputs):
        _set_port(port, port_type, dims)
    for unused in ports[len(op_inputs):]:
        op.find("input").remove(unused)
    out_port = op.find("output/port")
    out_port.set("id", str(len(op_inputs)))  # ports are numbered inputs first, then outputs
    output_shape = output_dims(case)
    _set_port(out_port, element_type, output_shape)
    out_port.set("names", OUTPUT_NAME)
    for index, (source, _, _) in enumerate(op_inputs):
        graph.connect(source, op, index)

    result = graph.add("Result", "result")
    _set_port(result.find("input/port"), element_type, output_shape)
    graph.connect(op, result, 0)
    xml = etree.tostring(graph.net, pretty_print=True, xml_declaration=True, encoding="utf-8")
    return xml, bytes(graph.weights), tuple(graph.runtime_inputs)


def render(case: Case, inputs: Inputs, directory: Path | str) -> RenderedIR:
    """Write ``case``'s IR to ``directory`` as ``<digest>.xml``/``.bin`` (reused if present)."""
    xml, weights, runtime_inputs = _render(case, inputs)
    digest = hashlib.sha256(xml + b"\0" + weights).hexdigest()[:20]
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    xml_path, bin_path = directory / f"{digest}.xml", directory / f"{digest}.bin"
    if not (xml_path.exists() and bin_path.exists()):
        # Write-then-rename: parallel workers may render the same case at once.
        for path, content in ((bin_path, weights), (xml_path, xml)):
            temporary = path.with_suffix(f"{path.suffix}.{os.getpid()}.tmp")
            temporary.write_bytes(content)
            os.replace(temporary, path)
    return RenderedIR(xml_path, bin_path, digest, element_type=case.element_type, runtime_inputs=runtime_inputs)
