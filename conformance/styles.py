"""Ways to write a case: translate PyTorch- and MATLAB-style fields to the spec's.

A case may be written in the spec's own terms (``data``/``kernel`` shapes in the
op's layouts, ``strides``, ``pads_begin``... as today), or with the parameters
of ``torch.nn.Conv{1,2,3}d`` / ``ConvTranspose{1,2,3}d`` (``style: pytorch``), or
with those of MATLAB's ``groupedConvolution2dLayer`` (``style: matlab``). This
module turns the latter two into spec fields; ``case.py`` then checks and
resolves the result exactly as if it had been written in spec style, so every
style renders the same IR for the same convolution.

Framework ``'same'`` padding becomes *explicit* pads (``auto_pad: explicit``),
computed the way the framework computes them, so the IR does not depend on how
the op spec's ``same_upper``/``same_lower`` are read:

* PyTorch ``padding='same'`` (stride 1 only, as torch itself requires): total
  ``dilation*(kernel-1)``, ``begin = total // 2``, the odd unit at the end.
* MATLAB ``Padding: same``: output ``ceil(in/stride)``, total
  ``max(0, (out-1)*stride + dilated kernel - in)``, the odd unit at the
  bottom/right (= the end). Both are what the spec calls ``same_upper``.

Relations between the framework's own parameters (``in_channels`` divisible by
``groups``...) are checked here and reported under the framework's field names.
"""
from __future__ import annotations

from typing import Any

from . import ops
from .ops import FieldError  # noqa: F401 (re-exported)

STYLES = ("spec", "pytorch", "matlab")

# The spec field each framework field becomes: errors found in the translated fields are reported
# at the field the user wrote.
ORIGIN = {
    "pytorch": {"data": "input_shape", "kernel": "kernel_size", "strides": "stride", "dilations": "dilation",
                "pads_begin": "padding", "pads_end": "padding"},
    "matlab": {"data": "InputSize", "kernel": "FilterSize", "strides": "Stride",
               "dilations": "DilationFactor", "pads_begin": "Padding", "pads_end": "Padding"},
}


def _per_axis(values: dict, name: str, rank: int, default: int) -> tuple[int, ...]:
    """An int (broadcast) or a list of ``rank`` ints, as torch and MATLAB both accept."""
    value = values.get(name, default)
    if isinstance(value, int):
        return (value,) * rank
    value = tuple(value)
    if len(value) != rank:
        raise FieldError(name, f"has {len(value)} values but the input has {rank} spatial axes "
                               f"(give one integer, or {rank})")
    return value


def _same_pads(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """Output ceil(size/stride); the odd unit of padding at the end (bottom/right)."""
    out = -(-size // stride)
    total = max(0, (out - 1) * stride + (kernel - 1) * dilation + 1 - size)
    return total // 2, total - total // 2


# --- PyTorch ------------------------------------------------------------------

def from_pytorch(values: dict[str, Any], op: str) -> dict[str, Any]:
    """``nn.ConvNd``/``nn.ConvTransposeNd`` parameters -> spec fields.

    Weight layouts (PyTorch's ``groups`` relations, the op's ``pytorch_kernel``): ``Conv`` weight
    is ``[out_channels, in_channels/groups, k...]`` = spec kernel
    ``[groups, out_channels/groups, in_channels/groups, k...]``;
    ``ConvTranspose`` weight is ``[in_channels, out_channels/groups, k...]`` = spec
    kernel ``[groups, in_channels/groups, out_channels/groups, k...]``. An ungrouped op
    (Convolution, ConvolutionBackpropData) takes ``groups: 1`` and has no GROUPS axis.
    """
    operation = ops.get(op)
    input_shape = tuple(values["input_shape"])
    rank = len(input_shape) - 2
    if not 1 <= rank <= 3:
        raise FieldError("input_shape", f"rank must be 3, 4 or 5 ([N, C, L], [N, C, H, W] or [N, C, D, H, W]), "
                                        f"got {len(input_shape)}")
    in_channels, out_channels = values["in_channels"], values["out_channels"]
    groups = values.get("groups", 1)
    if input_shape[1] != in_channels:
        raise FieldError("in_channels", f"is {in_channels} but input_shape {list(input_shape)} has "
                                        f"{input_shape[1]} channels")
    for name, channels in (("in_channels", in_channels), ("out_channels", out_channels)):
        if channels % groups:
            raise FieldError(name, f"{channels} is not divisible by groups={groups} "
                                   f"(torch requires both channel counts divisible by groups)")
    kernel_size = _per_axis(values, "kernel_size", rank, 1)
    stride = _per_axis(values, "stride", rank, 1)
    dilation = _per_axis(values, "dilation", rank, 1)
    padding = values.get("padding", 0)
    transposed = operation.transposed
    if isinstance(padding, str):
        if transposed:
            raise FieldError("padding", f"{padding!r}: ConvTranspose takes only integer padding "
                                        f"(torch has no 'same'/'valid' for it)")
        if padding == "valid":
            padding = 0
        elif any(s != 1 for s in stride):
            raise FieldError("padding", "'same' needs stride 1 (torch rejects padding='same' for strided "
                                        "convolutions); give explicit padding instead")
        else:
            pads = [_same_pads(size, k, 1, d) for size, k, d in zip(input_shape[2:], kernel_size, dilation)]
            pads_begin, pads_end = tuple(p[0] for p in pads), tuple(p[1] for p in pads)
    if not isinstance(padding, str):
        pads_begin = pads_end = _per_axis({"padding": padding}, "padding", rank, 0)
    spec = {
        "data": input_shape,
        "strides": stride, "dilations": dilation, "pads_begin": pads_begin, "pads_end": pads_end,
        "auto_pad": "explicit",
    }
    spec.update(operation.pytorch_fields(values, rank, _per_axis))
    spec["kernel"] = operation.pytorch_kernel(groups, in_channels, out_channels, kernel_size)
    return spec


# --- MATLAB -------------------------------------------------------------------

def from_matlab(values: dict[str, Any], op: str) -> dict[str, Any]:
    """MATLAB grouped 2D convolution layer properties -> spec fields (the ops whose ``styles`` have
    matlab; the layer is the op's ``matlab_layer``, e.g. GroupConvolution's ``groupedConvolution2dLayer``).

    ``InputSize`` is ``[H W C]`` as in ``imageInputLayer``; the batch is ``BatchSize`` (default 1);
    ``NumGroups`` groups of ``NumFiltersPerGroup`` filters over ``C / NumGroups`` channels each make
    the op's kernel (``kernel_shape_for``).
    """
    operation = ops.get(op)
    if "matlab" not in operation.styles:
        having = [ops.get(name) for name in ops.names() if "matlab" in ops.get(name).styles]
        raise FieldError("style", f"matlab style describes {' / '.join(o.matlab_layer for o in having)}, i.e. "
                                  f"{' / '.join(o.name for o in having)}; write {op} cases in "
                                  f"{' or '.join(operation.styles)} style")
    padding_value = values.get("PaddingValue", 0)
    if padding_value != 0:
        raise FieldError("PaddingValue", f"{padding_value!r} cannot be expressed: {op} pads with "
                                         f"zeros only (allowed: 0)")
    if len(values["InputSize"]) != 3:
        raise FieldError("InputSize", f"has {len(values['InputSize'])} values; allowed: [H W C] "
                                      f"({operation.matlab_layer} is 2D)")
    height, width, channels = values["InputSize"]
    groups = values["NumGroups"]
    if groups == "channelwise":
        groups = channels
    if channels % groups:
        raise FieldError("NumGroups", f"{groups} does not evenly divide the {channels} input channels "
                                      f"(MATLAB requires it)")
    filter_size = _per_axis(values, "FilterSize", 2, 1)
    stride = _per_axis(values, "Stride", 2, 1)
    dilation = _per_axis(values, "DilationFactor", 2, 1)
    padding = values.get("Padding", 0)
    if padding == "same":
        pads = [_same_pads(size, k, s, d) for size, k, s, d in zip((height, width), filter_size, stride, dilation)]
        pads_begin, pads_end = (pads[0][0], pads[1][0]), (pads[0][1], pads[1][1])
    elif isinstance(padding, int):
        pads_begin = pads_end = (padding, padding)
    elif len(padding) == 2:          # [a b]: a top and bottom, b left and right
        pads_begin = pads_end = tuple(padding)
    elif len(padding) == 4:          # [t b l r]
        top, bottom, left, right = padding
        pads_begin, pads_end = (top, left), (bottom, right)
    else:
        raise FieldError("Padding", f"has {len(padding)} values; allowed: p, [a b], [t b l r] or same")
    return {
        "data": (values.get("BatchSize", 1), channels, height, width),
        "kernel": operation.kernel_shape_for(groups, channels // groups, values["NumFiltersPerGroup"], filter_size),
        "strides": stride, "dilations": dilation, "pads_begin": pads_begin, "pads_end": pads_end,
        "auto_pad": "explicit",
    }


TRANSLATORS = {"pytorch": from_pytorch, "matlab": from_matlab}


def to_spec(style: str, values: dict[str, Any], op: str) -> dict[str, Any]:
    """Spec-style fields for ``values`` written in ``style`` (spec style passes through)."""
    if style == "spec":
        return dict(values)
    return TRANSLATORS[style](values, op)
