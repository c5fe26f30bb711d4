"""Hypothesis strategies for random *valid* op configurations, shown as case YAML.

A drawn ``OpConfig`` prints (and shrinks) as a complete case file, so a
falsifying example can be pasted into ``cases/`` and run by the suite as is.
Sizes stay tiny (the literal reference loops in Python); what varies is every
attribute the specs define: 1D/2D/3D, groups (incl. depthwise and G=1),
strides, dilations, asymmetric and negative pads, every auto_pad,
output_padding and output_shape.
"""
from __future__ import annotations

from hypothesis import strategies as st

from conformance import ops as registry
from conformance.case import Case, load_cases_text
from conformance.ops.fuzz import HUGE_STRIDE  # noqa: F401 (re-exported)

CONV = "GroupConvolution"
BACKPROP = "GroupConvolutionBackpropData"
FIELD_ORDER = ("data", "kernel", "strides", "dilations", "pads_begin", "pads_end", "auto_pad",
               "output_padding", "output_shape", "allow_negative_pads", "fill", "seed")


class OpConfig:
    """One random configuration; ``repr`` is the case file that reproduces it.

    A plain class, not a dataclass: Hypothesis prints dataclasses field by
    field, but uses ``repr`` for this, so a falsifying example reads as YAML.
    """

    def __init__(self, op: str, fields: dict):
        self.op = op
        self.fields = fields

    def yaml(self) -> str:
        lines = [f"op: {self.op}", "cases:", "  - name: hypothesis_example"]
        for key in FIELD_ORDER:
            if key in self.fields:
                value = self.fields[key]
                text = str(value).lower() if isinstance(value, bool) else (
                    list(value) if isinstance(value, tuple) else value)
                lines.append(f"    {key}: {text}")
        return "\n".join(lines) + "\n"

    def __repr__(self) -> str:
        return "\n# --- case file ---\n" + self.yaml() + "# ---"

    def case(self) -> Case:
        """The harness's own reading of this configuration (raises CaseError if it rejects it)."""
        return load_cases_text(self.yaml(), "<hypothesis>")[0]

    def get(self, key, default=None):
        return self.fields.get(key, default)


@st.composite
def op_configs(draw, ops=(CONV, BACKPROP), negative_pads: bool = True, output_shape: bool = True):
    """A random valid configuration of one of ``ops``: each op's own strategy (``Op.strategy``)."""
    name = draw(st.sampled_from(ops))
    op, fields = draw(registry.get(name).strategy(negative_pads=negative_pads, output_shape=output_shape))
    return OpConfig(op, fields)


@st.composite
def edge_configs(draw, ops=(CONV, BACKPROP), huge_strides: bool = True):
    """A random valid configuration at the edges the spec allows and frameworks do not
    (``Op.edge_strategy``; conformance/ops/fuzz.py says which edges).

    ``huge_strides=False`` for runs on CPU (a depthwise GroupConvolution with a 2**40 stride kills
    OpenVINO 2026.4.1 with SIGFPE: docs/spec-notes.md#sn-huge-strides).
    """
    name = draw(st.sampled_from(ops))
    op, fields = draw(registry.get(name).edge_strategy(huge_strides=huge_strides))
    return OpConfig(op, fields)
