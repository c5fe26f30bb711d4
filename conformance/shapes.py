"""What the spec's shape formulas produce (``Geometry``) and the sizes every op shares.

Each op's formulas (output shape, auto_pad / output_shape -> pads) live in its module under
``ops/`` (``Op.geometry``); every stage (oracle, renderer, checks) asks ``Case.geometry()``, so
the harness has exactly one reading of the spec text.
Where the spec is ambiguous, the reading taken here is documented in
``docs/spec-notes.md`` (the ``sn-…`` anchors in docstrings point there).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

AUTO_PADS = ("explicit", "same_upper", "same_lower", "valid")


@dataclass(frozen=True)
class Geometry:
    """What the spec says the op computes, reduced to sizes.

    ``pads_begin``/``pads_end`` are the effective pads: for a convolution they
    are added to the input; for a transposed one (BackpropData) they are cropped from the full
    transposed-convolution result ("applied in the backward way, for the output").
    """

    groups: int
    in_channels_per_group: int
    out_channels_per_group: int
    pads_begin: tuple[int, ...]
    pads_end: tuple[int, ...]
    output_shape: tuple[int, ...]  # full output shape [N, GROUPS*C_OUT, spatial...]
    kernel_volume: int
    # BackpropData: at most this many kernel taps land on one output element
    # (per axis ceil(K / (s / gcd(s, d)))); None: every tap can (GroupConvolution).
    landing_volume: int | None = None

    @property
    def accumulation_length(self) -> int:
        """Upper bound on the number of products summed into one output element."""
        taps = self.kernel_volume if self.landing_volume is None else self.landing_volume
        return self.in_channels_per_group * taps


def dilated_kernel(kernel: int, dilation: int) -> int:
    """Extent of a dilated kernel along one axis: (K - 1) * d + 1."""
    return (kernel - 1) * dilation + 1
