"""What every op module provides: ``Op``, the interface the stages ask instead of branching on names.

An op module defines one ``Op`` subclass and registers an instance (``ops/__init__.py``).
The grouped ops are the reference implementations; an ungrouped sibling (Convolution-1,
ConvolutionBackpropData-1) subclasses its grouped op with ``grouped = False``: its kernel has no
GROUPS axis, which ``grouped_shape``/``grouped_kernel`` add back (GROUPS = 1), so every formula
and the oracle are the grouped op's, read with one group.
"""
from __future__ import annotations

import math
from typing import Any, Callable

import numpy as np

from .. import shapes


class FieldError(ValueError):
    """A problem with one field's value; the caller adds file and line."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field, self.message = field, message


class Op:
    """One op of the spec: everything the stages need to know about it."""

    name: str = ""
    spec: str = ""                       # the spec page, e.g. "GroupConvolution-1"
    template: str = ""                   # ir_templates/<template>.xml
    grouped: bool = True                 # the kernel's first axis is GROUPS
    transposed: bool = False             # a transposed (backprop-data) convolution
    fields: tuple[str, ...] = ()         # case fields only this op (and its kind) has
    styles: tuple[str, ...] = ("spec", "pytorch")
    matlab_layer: str | None = None      # the MATLAB layer a ``style: matlab`` case of this op describes
    sibling: str | None = None           # the ungrouped op one group of this op is (grouped ops only)
    kernel_layout: str = ""              # e.g. "[GROUPS, C_OUT, C_IN, ...]"
    data_layout: str = "[N, GROUPS*C_IN, spatial...]"
    scaffolds: dict[str, str] = {}       # ``ov-conformance new`` templates, per style

    # --- kernel layout -------------------------------------------------------------
    def kernel_rank(self, data_rank: int) -> int:
        return data_rank + 1 if self.grouped else data_rank

    def grouped_shape(self, kernel_shape) -> tuple[int, ...]:
        """The kernel shape with its GROUPS axis (1 for an ungrouped op)."""
        return tuple(kernel_shape) if self.grouped else (1,) + tuple(kernel_shape)

    def ungrouped_shape(self, grouped_shape) -> tuple[int, ...]:
        """The inverse of ``grouped_shape``: this op's kernel shape for a grouped one."""
        return tuple(grouped_shape) if self.grouped else tuple(grouped_shape)[1:]

    def grouped_kernel(self, kernel: np.ndarray) -> np.ndarray:
        """The kernel array with its GROUPS axis (a view)."""
        return kernel if self.grouped else kernel[None]

    def kernel_spatial(self, kernel_shape) -> tuple[int, ...]:
        return self.grouped_shape(kernel_shape)[3:]

    def channels(self, kernel_shape) -> tuple[int, int, int]:
        """(GROUPS, C_IN, C_OUT) per group, read in this op's kernel layout."""
        raise NotImplementedError

    def grouped_layout(self, groups: int, c_in: int, c_out: int, spatial) -> tuple[int, ...]:
        """The grouped kernel shape for GROUPS, C_IN and C_OUT per group."""
        raise NotImplementedError

    def kernel_shape_for(self, groups: int, c_in: int, c_out: int, spatial) -> tuple[int, ...]:
        """This op's kernel shape for GROUPS (1 for an ungrouped op), C_IN and C_OUT per group."""
        return self.ungrouped_shape(self.grouped_layout(groups, c_in, c_out, tuple(spatial)))

    def grouped_name(self) -> str:
        """The grouped op whose sibling this is (itself for a grouped op)."""
        from . import REGISTRY
        return next((op.name for op in REGISTRY.values() if op.sibling == self.name), self.name)

    def single_channel_kernel_shape(self, kernel_shape) -> tuple[int, ...]:
        """A kernel of the same spatial size with one group, one input and one output channel."""
        return self.ungrouped_shape((1, 1, 1) + self.kernel_spatial(kernel_shape))

    def taps_per_output_channel(self, kernel_shape) -> int:
        """Kernel weights that can feed one output channel: C_IN per group x kernel volume."""
        return self.channels(kernel_shape)[1] * math.prod(self.kernel_spatial(kernel_shape))

    def per_output_channel(self, kernel: np.ndarray, change: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """Apply ``change`` to the kernel viewed as (output channels, taps feeding each), and
        return the result in this op's layout."""
        view = self.grouped_kernel(kernel)
        if self.transposed:   # [G, C_IN, C_OUT, k...]: C_OUT before C_IN first
            view = np.swapaxes(view, 1, 2)
        changed = change(view.reshape(view.shape[0] * view.shape[1], -1)).reshape(view.shape)
        if self.transposed:
            changed = np.swapaxes(changed, 1, 2)
        return np.ascontiguousarray(changed.reshape(kernel.shape))

    # --- the spec's formulas ---------------------------------------------------------
    def geometry(self, case) -> shapes.Geometry:
        raise NotImplementedError

    def attributes(self, case) -> dict[str, str]:
        """The IR ``<data>`` attributes, as OpenVINO's IR writes them."""
        return {
            "strides": _join(case.strides),
            "pads_begin": _join(case.pads_begin),
            "pads_end": _join(case.pads_end),
            "dilations": _join(case.dilations),
            "auto_pad": case.auto_pad,
        }

    def extra_inputs(self, case) -> list[tuple[str, np.ndarray, bool]]:
        """Op inputs after data and kernel: (name, value, fed at inference time)."""
        return []

    def resolve_fields(self, spec_values: dict, axes: Callable, error: Callable, show: Callable) -> dict:
        """This op's own fields (``fields``), checked and resolved; ``axes(name, default)`` reads a
        per-axis field, ``error(name, message)`` makes a located error."""
        return {"output_padding": None, "output_shape": None}

    def derived_sizes(self, size: int, extent: int, stride: int, pads: int) -> dict[str, int]:
        """Sizes the oracle and runtime derive along one axis, by the field to blame (int64 check)."""
        return {"dilations": extent, "pads_end": size + pads}

    def oracle_limit(self, case) -> tuple[str, str] | None:
        """(field, message) when the oracle cannot compute ``case`` (README 'Limits'), else None."""
        return None

    def multiply_adds(self, case, geometry) -> int:
        """Multiply-adds one inference does (the perf view's GFLOP are twice this): every output
        element sums ``accumulation_length`` products (window taps in the padding included, as
        benchdnn counts them)."""
        return geometry.accumulation_length * math.prod(geometry.output_shape)

    # --- the oracle ------------------------------------------------------------------
    def extents(self, case) -> tuple[int, ...]:
        return tuple(shapes.dilated_kernel(k, d) for k, d in zip(self.kernel_spatial(case.kernel_shape),
                                                                  case.dilations))

    def reach(self, case, geometry) -> tuple[np.ndarray, ...] | None:
        """Per spatial axis, which output positions at least one kernel tap reaches (a product of a
        data element, not only pads or zeros past the result): with all-ones data and kernel the tap
        count of an output element is the product of its axes' counts, so ``taps.reached`` is the
        outer AND of these. None: no per-axis formula (``taps.reached`` convolves ones instead)."""
        return None

    def torch_weight(self, kernel):
        """Grouped spec kernel (``grouped_kernel``) -> torch's grouped layout: [G, A, B, k...] -> [G*A, B, k...] (A = C_OUT for a
        convolution, C_IN for a transposed one: exactly torch's conv / conv_transpose weights)."""
        return kernel.reshape((-1,) + tuple(kernel.shape[2:]))

    def window(self, case, geometry, data, weight, outputs, first_rows):
        """Output positions ``outputs`` (a range per spatial axis) from ``data``, whose axis ``a``
        starts at global row ``first_rows[a]``; ``weight`` from ``torch_weight``."""
        raise NotImplementedError

    def slab(self, case, geometry, data, weight, start, stop):
        """Output planes [start, stop) along the first spatial axis, from the input rows they need."""
        raise NotImplementedError

    # --- memory model (case.footprint_bytes) -------------------------------------------
    def intermediate_elements(self, case, geometry) -> int:
        """Elements of the oracle's intermediate tensor (padded input / uncropped result)."""
        raise NotImplementedError

    def slab_intermediate_fraction(self, input_fraction: float, planes: int, depth: int) -> float:
        """Fraction of the intermediate one slab keeps."""
        raise NotImplementedError

    # --- styles ------------------------------------------------------------------------
    def pytorch_kernel(self, groups: int, in_channels: int, out_channels: int, kernel_size) -> tuple[int, ...]:
        """The spec kernel shape for torch's ``groups``/``in_channels``/``out_channels``/``kernel_size``."""
        if not self.grouped and groups != 1:
            raise FieldError("groups", f"{groups}: {self.name} has no groups (allowed: 1); write the case "
                                       f"as {self.grouped_name()}")
        return self.kernel_shape_for(groups, in_channels // groups, out_channels // groups, kernel_size)

    def pytorch_fields(self, values: dict[str, Any], rank: int, per_axis: Callable) -> dict[str, Any]:
        """Spec fields of this op's own from torch's (e.g. output_padding)."""
        if "output_padding" in values:
            raise FieldError("output_padding", f"only ConvTranspose ({' / '.join(_transposed_names())}) has it")
        return {}

    # --- fuzzing -----------------------------------------------------------------------
    def strategy(self, **options):
        """A hypothesis strategy of ``(op name, fields)`` for random valid cases of this op."""
        raise NotImplementedError

    def fuzz_fields(self, rng, max_channels: int) -> dict:
        """A random fuzz parameter dict (``ops.fuzz``) of this op drawn from ``rng`` (a seeded
        ``random.Random``: the same state gives the same dict); may still be invalid (the loader decides)."""
        raise NotImplementedError

    def fuzz_classes(self, params: dict) -> dict[str, str]:
        """The attribute classes of a fuzz parameter dict: the keys of a finding's signature, the
        registry's ``signature.attributes`` and the campaign's coverage steering."""
        raise NotImplementedError


def _transposed_names() -> list[str]:
    from . import REGISTRY
    return [op.name for op in REGISTRY.values() if op.transposed]


def _join(values) -> str:
    return ",".join(str(v) for v in values)
