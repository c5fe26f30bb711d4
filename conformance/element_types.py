"""The one element-type table: IR element types the harness feeds from numpy, and what each is.

Every stage derives its view from ``TABLE``: case.py the allowed names, inputs.py the numpy holder
and significand, render.py the IR port precision, compare.py the unit roundoff and integer types.
(f8/i4 are IR types numpy cannot hold, so they are not here; bf16 is held in float32.)
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ElementType:
    name: str                      # the IR's short name (<data element_type>)
    numpy: type                    # the numpy dtype that holds its values
    port_precision: str            # the IR port precision name
    significand_bits: int | None   # floating point: bits of significand (implicit bit included); None: integer


TABLE: dict[str, ElementType] = {t.name: t for t in (
    ElementType("f32", np.float32, "FP32", 24),
    ElementType("f16", np.float16, "FP16", 11),
    ElementType("bf16", np.float32, "BF16", 8),
    ElementType("f64", np.float64, "FP64", 53),
    ElementType("i64", np.int64, "I64", None),
    ElementType("i32", np.int32, "I32", None),
    ElementType("i16", np.int16, "I16", None),
    ElementType("i8", np.int8, "I8", None),
    ElementType("u64", np.uint64, "U64", None),
    ElementType("u32", np.uint32, "U32", None),
    ElementType("u16", np.uint16, "U16", None),
    ElementType("u8", np.uint8, "U8", None),
)}

ELEMENT_TYPES = tuple(TABLE)
NUMPY_DTYPES = {name: t.numpy for name, t in TABLE.items()}
PORT_PRECISIONS = {name: t.port_precision for name, t in TABLE.items()}
SIGNIFICAND_BITS = {name: t.significand_bits for name, t in TABLE.items() if t.significand_bits is not None}
UNIT_ROUNDOFF = {name: 2.0 ** -bits for name, bits in SIGNIFICAND_BITS.items()}
INTEGER_TYPES = tuple(name for name, t in TABLE.items() if t.significand_bits is None)


def of_numpy(dtype) -> str:
    """The element type a numpy integer array of ``dtype`` is (an op's extra input, e.g. int64 output_shape)."""
    dtype = np.dtype(dtype)
    return next(name for name, t in TABLE.items() if t.significand_bits is None and np.dtype(t.numpy) == dtype)
