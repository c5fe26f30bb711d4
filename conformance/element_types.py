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


# --- integer fills and exactness (inputs.py fills with these; post-ops and fuzzing ask them too) ---

INTEGER_RANGE = (-3, 3)  # inclusive; unsigned element types use (0, 3)


def exact_limit(element_type: str) -> int:
    """Largest integer magnitude L such that every integer in [-L, L] is exact in ``element_type``."""
    if element_type in SIGNIFICAND_BITS:
        return 2 ** SIGNIFICAND_BITS[element_type]
    info = np.iinfo(NUMPY_DTYPES[element_type])
    return int(info.max) if info.min == 0 else int(min(-int(info.min), int(info.max)))


def default_integer_range(element_type: str) -> tuple[int, int]:
    """The default integer fill range of an element type (unsigned types start at 0)."""
    return (0, INTEGER_RANGE[1]) if element_type.startswith("u") else INTEGER_RANGE


def fill_integer_range(fill_range: tuple[int, int] | None, element_type: str) -> tuple[int, int]:
    """The inclusive integer fill range: a case's ``fill_range``, else the element type's default."""
    return fill_range if fill_range is not None else default_integer_range(element_type)


def exact_taps_limit(fill_range: tuple[int, int], element_types) -> int | None:
    """Nonzero kernel weights per output channel whose products of ``fill_range`` values still sum
    exactly in every one of ``element_types`` (None: any number, the range is 0 only)."""
    largest = max(abs(fill_range[0]), abs(fill_range[1]))
    if largest == 0:
        return None
    return min(exact_limit(t) for t in element_types) // (largest * largest)


def to_element_type(values: np.ndarray, element_type: str) -> np.ndarray:
    """Round float ``values`` to ``element_type`` (nearest even), in its numpy holder."""
    if element_type == "bf16":
        return round_to_bf16(values)
    return np.asarray(values).astype(NUMPY_DTYPES[element_type])


def round_to_bf16(values: np.ndarray) -> np.ndarray:
    """float32 array of ``values`` rounded to bfloat16 (round to nearest even)."""
    bits = np.ascontiguousarray(values, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) & 0xFFFF0000
    return rounded.astype(np.uint32).view(np.float32)
