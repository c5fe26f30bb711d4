"""ConvolutionBackpropData-1: GroupConvolutionBackpropData-1 with one group and no GROUPS axis.

Spec (ConvolutionBackpropData-1.rst): input 1 ``[N, C_IN, Z, Y, X]``, input 2 (filter)
``[C_IN, C_OUT, Z, Y, X]``, optional input 3 output_shape, output ``[N, C_OUT, Z, Y, X]``; the same
attributes and formulas as GroupConvolutionBackpropData-1 (whose module this one reuses, reading
the kernel with GROUPS = 1).
"""
from __future__ import annotations

from .group_convolution_backprop_data import GroupConvolutionBackpropData

SPEC_SCAFFOLD = """\
# ConvolutionBackpropData-1 cases, written in the spec's terms.
# Check with: ov-conformance validate {path}
op: ConvolutionBackpropData
cases:
  - name: my_case                # no spaces, '[', ']', ':' or '/'
    description: what this case shows
    data: [1, 4, 5, 5]           # [N, C_IN, spatial...]: rank 3, 4 or 5
    kernel: [4, 6, 3, 3]         # [C_IN, C_OUT, k...]: rank = data rank
    strides: [2, 2]              # >= 1; one integer for all axes, or one per spatial axis
    dilations: [1, 1]            # >= 1
    pads_begin: [1, 1]           # >= 0, cropped from the output; used when auto_pad is explicit
    pads_end: [1, 1]
    output_padding: [1, 1]       # >= 0, added at the end
    auto_pad: explicit           # explicit, same_upper, same_lower, valid
    # output_shape: [10, 10]     # optional 3rd input: the output's spatial sizes
"""


class ConvolutionBackpropData(GroupConvolutionBackpropData):
    name = "ConvolutionBackpropData"
    spec = "ConvolutionBackpropData-1"
    template = "ConvolutionBackpropData"
    grouped = False
    sibling = None
    kernel_layout = "[C_IN, C_OUT, ...]"
    data_layout = "[N, C_IN, spatial...]"
    scaffolds = {"spec": SPEC_SCAFFOLD}


OP = ConvolutionBackpropData()
