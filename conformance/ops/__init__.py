"""The op registry: one module per op, looked up by name; no stage branches on an op's name.

    from conformance import ops
    op = ops.get(case.op)          # an ``ops.base.Op``
    op.geometry(case), op.attributes(case), op.window(...), op.strategy()

Adding an op: a module here defining an ``Op`` subclass and ``OP = ...``, listed in ``_MODULES``,
plus its IR template in ``ir_templates/`` and cases (docs/adding-an-op.md).
"""
from __future__ import annotations

import importlib

from .base import FieldError, Op

__all__ = ["FieldError", "Op", "REGISTRY", "get", "names", "having_field"]

_MODULES = ("group_convolution", "group_convolution_backprop_data", "convolution", "convolution_backprop_data")

REGISTRY: dict[str, Op] = {}
for _module in _MODULES:
    _op = importlib.import_module(f"{__name__}.{_module}").OP
    REGISTRY[_op.name] = _op


def get(name: str) -> Op:
    """The op called ``name`` (KeyError naming the known ops otherwise)."""
    try:
        return REGISTRY[name]
    except (KeyError, TypeError):
        raise KeyError(f"{name!r} is not an op this harness tests (known: {', '.join(REGISTRY)})") from None


def names() -> tuple[str, ...]:
    return tuple(REGISTRY)


def having_field(field: str) -> tuple[str, ...]:
    """The ops that have the op-specific case field ``field`` (output_padding, ...)."""
    return tuple(name for name, op in REGISTRY.items() if field in op.fields)
