"""Hypothesis strategies for random *valid* op configurations, shown as case YAML.

A drawn ``OpConfig`` prints (and shrinks) as a complete case file, so a
falsifying example can be pasted into ``cases/`` and run by the suite as is.
Sizes stay tiny (the literal reference loops in Python); what varies is every
attribute the specs define: 1D/2D/3D, groups (incl. depthwise and G=1),
strides, dilations, asymmetric and negative pads, every auto_pad,
output_padding and output_shape.
"""
from __future__ import annotations

from hypothesis import assume
from hypothesis import strategies as st

from conformance.case import Case, load_cases_text

CONV = "GroupConvolution"
BACKPROP = "GroupConvolutionBackpropData"
AUTO_PADS = ("explicit", "same_upper", "same_lower", "valid")
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


def _dilated(kernel: int, dilation: int) -> int:
    return (kernel - 1) * dilation + 1


@st.composite
def op_configs(draw, ops=(CONV, BACKPROP), negative_pads: bool = True, output_shape: bool = True):
    """A random valid configuration of GroupConvolution or GroupConvolutionBackpropData."""
    op = draw(st.sampled_from(ops))
    rank = draw(st.integers(1, 3))
    if draw(st.booleans()):
        groups, c_in, c_out = draw(st.integers(1, 4)), 1, 1          # depthwise (or G=1, 1x1 channels)
    else:
        groups = draw(st.integers(1, 3))
        c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = draw(st.integers(1, 2))
    max_kernel = 4 if rank < 3 else 3
    kernel = [draw(st.integers(1, max_kernel)) for _ in range(rank)]
    strides = [draw(st.integers(1, 3)) for _ in range(rank)]
    dilations = [draw(st.integers(1, 3)) for _ in range(rank)]
    auto_pad = draw(st.sampled_from(AUTO_PADS))
    negative = negative_pads and auto_pad == "explicit" and draw(st.integers(0, 4)) == 0
    low = -2 if negative else 0
    pads_begin = [draw(st.integers(low, 3)) for _ in range(rank)]
    pads_end = [draw(st.integers(low, 3)) for _ in range(rank)]
    max_extent = 7 if rank < 3 else 4

    spatial = []
    for axis in range(rank):
        dk = _dilated(kernel[axis], dilations[axis])
        smallest = 1
        if op == CONV and auto_pad in ("explicit", "valid"):
            pads = pads_begin[axis] + pads_end[axis] if auto_pad == "explicit" else 0
            # At least one window must fit, and negative pads must leave some input.
            smallest = max(1, dk - pads, 1 - min(pads_begin[axis], 0) - min(pads_end[axis], 0))
        spatial.append(draw(st.integers(smallest, smallest + max_extent)))
    fields = {
        "data": [batch, groups * c_in] + spatial,
        "kernel": [groups, c_out, c_in] + kernel if op == CONV else [groups, c_in, c_out] + kernel,
        "strides": strides, "dilations": dilations, "pads_begin": pads_begin, "pads_end": pads_end,
        "auto_pad": auto_pad,
    }
    if negative:
        fields["allow_negative_pads"] = True
    if op == BACKPROP:
        output_padding = [draw(st.integers(0, max(s, d) - 1)) for s, d in zip(strides, dilations)]
        fields["output_padding"] = output_padding
        full = [s * (x - 1) + _dilated(k, d) for x, k, s, d in zip(spatial, kernel, strides, dilations)]
        if output_shape and draw(st.booleans()):
            # total_padding = full - output_shape + output_padding, kept >= 0 (the spec's pads are >= 0)
            totals = [draw(st.integers(0, min(f + p - 1, 6))) for f, p in zip(full, output_padding)]
            fields["output_shape"] = [f + p - t for f, p, t in zip(full, output_padding, totals)]
        elif auto_pad == "explicit":
            # The crop must leave at least one element and never reach past the full result.
            for f, b, e, p in zip(full, pads_begin, pads_end, output_padding):
                assume(f - b - e + p >= 1 and b < f and e - p < f)
    fields["fill"] = "uniform"
    fields["seed"] = draw(st.integers(0, 2**32 - 1))
    return OpConfig(op, fields)


HUGE_STRIDE = 2 ** 40   # spec-valid (any positive integer), representable in every index type used


@st.composite
def edge_configs(draw, ops=(CONV, BACKPROP), huge_strides: bool = True):
    """A random valid configuration at the edges the spec allows and frameworks do not.

    BackpropData: ``output_padding`` up to ``max(stride, dilation) + 4`` (PyTorch stops below
    ``max(stride, dilation)``), explicit pads that crop into the appended zeros or past the full
    result, ``output_shape`` smaller or larger than the full result, output sizes of 1.
    GroupConvolution: pads larger than the input. Both: strides of 2**40 (1 in 4 axes).
    Inputs use the default integer fill, so the oracle may take its float32 shortcut.
    ``huge_strides=False`` for runs on CPU (a depthwise GroupConvolution with a 2**40 stride kills
    OpenVINO 2026.4.1 with SIGFPE: docs/spec-notes.md#sn-huge-strides).
    """
    op = draw(st.sampled_from(ops))
    rank = draw(st.integers(1, 2))
    groups, c_in, c_out = draw(st.integers(1, 3)), draw(st.integers(1, 2)), draw(st.integers(1, 2))
    kernel = [draw(st.integers(1, 3)) for _ in range(rank)]
    strides = [draw(st.sampled_from((1, 2, 3, 5, HUGE_STRIDE) if huge_strides else (1, 2, 3, 5)))
               for _ in range(rank)]
    dilations = [draw(st.integers(1, 3)) for _ in range(rank)]
    auto_pad = draw(st.sampled_from(AUTO_PADS))
    fields = {"strides": strides, "dilations": dilations, "auto_pad": auto_pad}
    spatial, pads_begin, pads_end = [], [], []
    if op == CONV:
        for k, d in zip(kernel, dilations):
            b, e = draw(st.integers(0, 9)), draw(st.integers(0, 9))
            smallest = max(1, _dilated(k, d) - (b + e if auto_pad == "explicit" else 0))
            spatial.append(draw(st.integers(smallest, smallest + 4)))
            pads_begin.append(b)
            pads_end.append(e)
    else:
        with_output_shape = draw(st.booleans())
        output_padding, output_shape = [], []
        for k, s, d in zip(kernel, strides, dilations):
            # A huge stride with X > 1 makes the full result ~2**40 long: over any memory budget.
            x = 1 if s == HUGE_STRIDE else draw(st.integers(1, 5))
            p = draw(st.integers(0, min(max(s, d), 8) + 4))
            full = s * (x - 1) + _dilated(k, d)
            if with_output_shape:
                output_shape.append(draw(st.integers(1, full + p + 4)))   # up to 4 beyond the result
                b = e = draw(st.integers(0, 3))                           # ignored with output_shape
            elif auto_pad == "explicit" and p and draw(st.booleans()):
                y = draw(st.integers(1, p))                               # only appended zeros left:
                b, e = full + p - y, 0                                    # pads_begin >= the full result
            elif auto_pad == "explicit":
                y = draw(st.integers(1, full + p))
                b = draw(st.integers(0, full + p - y))                   # may crop into the zeros
                e = full + p - y - b
            else:
                b = e = draw(st.integers(0, 3))                           # ignored: pads are 0
            spatial.append(x)
            output_padding.append(p)
            pads_begin.append(b)
            pads_end.append(e)
        fields["output_padding"] = output_padding
        if with_output_shape:
            fields["output_shape"] = output_shape
    fields.update({
        "data": [draw(st.integers(1, 2)), groups * c_in] + spatial,
        "kernel": [groups, c_out, c_in] + kernel if op == CONV else [groups, c_in, c_out] + kernel,
        "pads_begin": pads_begin, "pads_end": pads_end,
        "fill": "integers", "seed": draw(st.integers(0, 2**32 - 1)),
    })
    return OpConfig(op, fields)
