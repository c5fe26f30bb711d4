"""Stage 2: ``Case`` + ``Inputs`` -> OpenVINO IR v11 (.xml + .bin).

The IR is assembled with lxml from the layer skeletons in ``ir_templates/``:
Parameter(data) -> Const(kernel) [-> Const(output_shape)] -> op -> Result.
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

from . import shapes
from .case import Case
from .inputs import Inputs

DATA_INPUT_NAME = "data"
OUTPUT_NAME = "output"

# IR element_type and port precision names per numpy dtype.
_ELEMENT_TYPES = {
    np.dtype(np.float32): ("f32", "FP32"),
    np.dtype(np.int64): ("i64", "I64"),
}


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
class RenderedIR:
    """A rendered IR pair on disk and the names the runtime needs."""

    xml_path: Path
    bin_path: Path
    digest: str                 # sha256 of xml + bin: the identity of what ran
    input_name: str = DATA_INPUT_NAME
    output_name: str = OUTPUT_NAME


class _Graph:
    """Accumulates layers (from templates), weights and edges for one net."""

    def __init__(self, name: str):
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

    def add_weights(self, array: np.ndarray) -> dict[str, str]:
        offset = len(self.weights)
        blob = np.ascontiguousarray(array).tobytes()
        self.weights += blob
        return {"offset": str(offset), "size": str(len(blob))}

    def connect(self, source: etree._Element, target: etree._Element, target_port: int) -> None:
        source_port = source.find("output/port").get("id")
        etree.SubElement(self.edges, "edge", {
            "from-layer": source.get("id"), "from-port": source_port,
            "to-layer": target.get("id"), "to-port": str(target_port)})


def _set_port(port: etree._Element, dtype: np.dtype, dims) -> None:
    port.set("precision", _ELEMENT_TYPES[np.dtype(dtype)][1])
    for dim in dims:
        etree.SubElement(port, "dim").text = str(dim)


def _constant(graph: _Graph, name: str, array: np.ndarray) -> etree._Element:
    element_type, _ = _ELEMENT_TYPES[array.dtype]
    layer = graph.add("Const", name, {"element_type": element_type, "shape": _join(array.shape),
                                      **graph.add_weights(array)})
    _set_port(layer.find("output/port"), array.dtype, array.shape)
    return layer


def _join(values) -> str:
    return ",".join(str(v) for v in values)


def render_bytes(case: Case, inputs: Inputs) -> tuple[bytes, bytes]:
    """The IR XML document and the weights blob for ``case``, without touching disk."""
    graph = _Graph(case.id)
    dtype = inputs.data.dtype
    element_type, _ = _ELEMENT_TYPES[dtype]

    parameter = graph.add("Parameter", DATA_INPUT_NAME, {"shape": _join(case.data_shape),
                                                         "element_type": element_type})
    _set_port(parameter.find("output/port"), dtype, case.data_shape)
    parameter.find("output/port").set("names", DATA_INPUT_NAME)

    kernel = _constant(graph, "kernel", inputs.kernel)
    op_inputs = [(parameter, case.data_shape), (kernel, case.kernel_shape)]
    if case.output_shape is not None:
        shape_const = _constant(graph, "output_shape", np.asarray(case.output_shape, dtype=np.int64))
        op_inputs.append((shape_const, (case.spatial_rank,)))

    op = graph.add(case.op, "op", case.attributes())
    ports = op.find("input").findall("port")
    for port, (source, dims) in zip(ports, op_inputs):
        source_dtype = np.int64 if source.get("name") == "output_shape" else dtype
        _set_port(port, source_dtype, dims)
    for unused in ports[len(op_inputs):]:
        op.find("input").remove(unused)
    out_port = op.find("output/port")
    if case.op == shapes.GROUP_CONVOLUTION_BACKPROP_DATA and case.output_shape is None:
        out_port.set("id", "2")  # ports are numbered inputs first, then outputs
    output_shape = case.geometry().output_shape
    _set_port(out_port, dtype, output_shape)
    out_port.set("names", OUTPUT_NAME)
    for index, (source, _) in enumerate(op_inputs):
        graph.connect(source, op, index)

    result = graph.add("Result", "result")
    _set_port(result.find("input/port"), dtype, output_shape)
    graph.connect(op, result, 0)
    xml = etree.tostring(graph.net, pretty_print=True, xml_declaration=True, encoding="utf-8")
    return xml, bytes(graph.weights)


def render(case: Case, inputs: Inputs, directory: Path | str) -> RenderedIR:
    """Write ``case``'s IR to ``directory`` as ``<digest>.xml``/``.bin`` (reused if present)."""
    xml, weights = render_bytes(case, inputs)
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
    return RenderedIR(xml_path, bin_path, digest)
