"""Convolution-1: GroupConvolution-1 with one group and no GROUPS axis in the kernel.

Spec (Convolution-1.rst): input 1 ``[N, C_IN, Z, Y, X]``, input 2 (kernel) ``[C_OUT, C_IN, Z, Y, X]``,
output ``[N, C_OUT, Z, Y, X]``; the same attributes and formulas as GroupConvolution-1 (whose
module this one reuses, reading the kernel with GROUPS = 1). Where the pages differ in words
(strides and dilations "integer values starting from 0"): docs/spec-notes.md#sn-convolution-range.
"""
from __future__ import annotations

from .group_convolution import GroupConvolution

SPEC_SCAFFOLD = """\
# Convolution-1 cases, written in the spec's terms.
# Check with: ov-conformance validate {path}
op: Convolution
cases:
  - name: my_case                # no spaces, '[', ']', ':' or '/'
    description: what this case shows
    data: [1, 4, 10, 10]         # [N, C_IN, spatial...]: rank 3, 4 or 5
    kernel: [6, 4, 3, 3]         # [C_OUT, C_IN, k...]: rank = data rank
    strides: [1, 1]              # >= 1; one integer for all axes, or one per spatial axis
    dilations: [1, 1]            # >= 1
    pads_begin: [1, 1]           # >= 0; used when auto_pad is explicit
    pads_end: [1, 1]
    auto_pad: explicit           # explicit, same_upper, same_lower, valid
"""


class Convolution(GroupConvolution):
    name = "Convolution"
    spec = "Convolution-1"
    template = "Convolution"
    grouped = False
    sibling = None
    kernel_layout = "[C_OUT, C_IN, ...]"
    data_layout = "[N, C_IN, spatial...]"
    styles = ("spec", "pytorch")
    scaffolds = {"spec": SPEC_SCAFFOLD}


OP = Convolution()
