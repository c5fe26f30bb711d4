"""The checks of one expanded case combination's fields against each other (the loader's step 3).

``case.py`` parses each field on its own (``schema.SCHEMA``) and translates styles; what it then
asks of a combination lives here: ranks, channels and per-axis attributes (``relations``), dynamic
data dims against ``infer_shapes`` (``dynamic_data``), the numerics fields (``numerics``) and the
harness's representability limits (``check_representable``, README "Limits"). Every problem is a
``CaseError`` at the line of the field the user wrote (``Entry.error``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from . import ops
from .schema import INT64_MAX, Case, _dynamic
from .yaml_loader import CaseError, _show


@dataclass
class Entry:
    """A case combination's merged fields, each with its line and how to name it."""

    path: str
    entry_line: int
    values: dict = field(default_factory=dict)
    lines: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)     # "strides" or "sweep.strides"

    def set(self, name, value, line, label=None):
        self.values[name] = value
        self.lines[name] = line
        self.labels[name] = label or name

    def error(self, name: str, message: str) -> CaseError:
        return CaseError(self.path, self.lines.get(name, self.entry_line), self.labels.get(name, name), message)


def relations(entry: Entry, op: str, spec_values: dict, origin: dict) -> dict:
    """Check and resolve spec fields against each other; errors name the field (or its origin)."""
    def error(name, message):
        return entry.error(origin.get(name, name), message)

    data_shape, kernel_shape = tuple(spec_values["data"]), tuple(spec_values["kernel"])
    if not 3 <= len(data_shape) <= 5:
        raise error("data", f"rank must be 3, 4 or 5 (1D/2D/3D), got {len(data_shape)}: {_show(list(data_shape))}")
    operation = ops.get(op)
    kernel_rank = operation.kernel_rank(len(data_shape))
    if len(kernel_shape) != kernel_rank:
        plus = " + 1" if kernel_rank > len(data_shape) else ""
        raise error("kernel", f"rank must be data rank{plus} = {kernel_rank}, got {len(kernel_shape)}: "
                              f"{_show(list(kernel_shape))}")
    rank = len(data_shape) - 2
    groups, in_per_group, _ = operation.channels(kernel_shape)
    if data_shape[1] != groups * in_per_group:
        what = "GROUPS*C_IN" if operation.grouped else "C_IN"
        raise error("kernel", f"data has {data_shape[1]} channels but kernel {operation.kernel_layout} "
                              f"{list(kernel_shape)} needs {what} = {groups * in_per_group}; the data's channels "
                              f"must be {what}")

    def axes(name, default):
        value = spec_values.get(name, default)
        if isinstance(value, int):
            return (value,) * rank
        if len(value) != rank:
            raise error(name, f"has {len(value)} values but the data has {rank} spatial axes; "
                              f"allowed: one integer, or {rank} values")
        return tuple(value)

    resolved = {"data_shape": data_shape, "kernel_shape": kernel_shape}
    for name, default in (("strides", 1), ("dilations", 1), ("pads_begin", 0), ("pads_end", 0)):
        resolved[name] = axes(name, default)
    if not entry.values.get("allow_negative_pads", False):
        for name in ("pads_begin", "pads_end"):
            if any(pad < 0 for pad in resolved[name]):
                raise error(name, f"negative pads {list(resolved[name])}; allowed: integers >= 0 "
                                  f"(set allow_negative_pads: true to probe negative pads on purpose)")
    resolved["auto_pad"] = spec_values.get("auto_pad", "explicit")
    resolved.update(operation.resolve_fields(spec_values, axes, error, _show))
    return resolved


def check_representable(entry: Entry, case: Case, origin: dict) -> None:
    """Refuse attribute combinations the harness cannot compute (README "Limits").

    Every size the oracle and the runtime derive per spatial axis (padded input, dilated
    kernel extent, BackpropData's full transposed size, the output) must fit int64; torch's
    transposed convolution reads dilations as 32-bit integers (2^32 + 1 silently becomes 1), so
    BackpropData's must fit int32.
    """
    def error(name, message):
        return entry.error(origin.get(name, name), message)

    op = ops.get(case.op)
    limit = op.oracle_limit(case)
    if limit is not None:
        raise error(*limit)
    for step in case.infer_shapes or (case.data_shape,):
        for axis, (size, k, s, d, pb, pe) in enumerate(zip(
                step[2:], op.kernel_spatial(case.kernel_shape), case.strides, case.dilations,
                case.pads_begin, case.pads_end)):
            for name, value in op.derived_sizes(size, (k - 1) * d + 1, s, pb + pe).items():
                if abs(value) > INT64_MAX:
                    raise error(name, f"axis {axis}: a derived size ({value}) does not fit a signed 64-bit "
                                      f"integer, which the oracle and the runtime compute with (README 'Limits')")


def dynamic_data(entry: Entry, spec_values: dict, common: dict) -> tuple[tuple[str, ...] | None, dict]:
    """Dynamic data dims: check ``infer_shapes`` against them; the first shape stands for the case."""
    data = spec_values.get("data", ())
    if not any(_dynamic(dim) for dim in data):
        if "infer_shapes" in common:
            raise entry.error("infer_shapes", "needs dynamic dims in data (-1 or 'low..high')")
        return None, spec_values
    if len(data) > 1 and _dynamic(data[1]):
        raise entry.error("data", "the channel dim must be static: the kernel fixes GROUPS*C_IN")
    if "infer_shapes" not in common:
        raise entry.error("infer_shapes", "data has dynamic dims: list the concrete shapes to infer, "
                                          "e.g. infer_shapes: [[1, 4, 8, 8], [2, 4, 5, 7]]")
    for shape in common["infer_shapes"]:
        if len(shape) != len(data):
            raise entry.error("infer_shapes", f"{_show(list(shape))} has rank {len(shape)}, data {len(data)}")
        for axis, (dim, declared) in enumerate(zip(shape, data)):
            low, high = ((1, None) if declared == -1 else tuple(map(int, declared.split(".."))) if isinstance(
                declared, str) else (declared, declared))
            if dim < low or (high is not None and dim > high):
                raise entry.error("infer_shapes", f"{list(shape)}: dim {axis} = {dim} does not fit data's {declared!r}")
    return tuple(str(dim) for dim in data), {**spec_values, "data": common["infer_shapes"][0]}


def numerics(entry: Entry, common: dict, resolved: dict) -> dict:
    """Case attributes of element_type, precisions, runtime inputs, fill_range and overrides, cross-checked."""
    element_type = common.get("element_type", "f32")
    fill = common.get("fill", "integers")
    if element_type[0] in "iu" and fill != "integers":
        raise entry.error("fill", f"element_type {element_type} needs fill: integers")
    if "fill_range" in common and fill != "integers":
        raise entry.error("fill_range", "only applies to fill: integers")
    if common.get("output_shape_input") == "parameter" and resolved.get("output_shape") is None:
        raise entry.error("output_shape_input", "needs output_shape (BackpropData's optional third input)")
    scale, reason = common.get("tolerance", (1.0, None))
    return {"element_type": element_type, "precisions": common.get("precisions", ()),
            "kernel_input": common.get("kernel_input", "const"),
            "output_shape_input": common.get("output_shape_input", "const"),
            "fill_range": common.get("fill_range"), "tolerance_scale": scale, "tolerance_reason": reason,
            "sparse_output_reason": common.get("allow_sparse_output")}
