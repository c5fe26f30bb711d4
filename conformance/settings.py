"""A run's settings and their defaults: the item time limit, the memory budget (with the size
parsing and formatting its option uses), how ``--perf`` times items, and the threads of an xdist worker.

Kept free of the stages and of numpy: pytest imports this to declare and parse its options, and
an xdist controller, which never runs a stage, gets as far as starting its workers on it alone
(docs/performance.md, "Session 7").
"""
from __future__ import annotations

import re
from dataclasses import dataclass

# Set by the pytest plugin in an xdist worker (its share of the cores): the CPU plugin's
# INFERENCE_NUM_THREADS wherever OpenVINO's Core is made (``runtime.core``), its OpenVINO workers included.
CPU_THREADS_VARIABLE = "CONFORMANCE_CPU_THREADS"

DEFAULT_TIMEOUT = 120.0        # seconds per isolated job (compile + infer); far above any case here

GIB = 1 << 30
DEFAULT_MEMORY_BUDGET = 16 * GIB  # the spec's full-size examples (224^3 3D) fit; a typo'd 10^6 does not

_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|B)?\s*$", re.IGNORECASE)
_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}


def parse_size(text: str | int) -> int:
    """``'16GiB'``, ``'512MB'``, ``'1000'`` or an int -> bytes."""
    if isinstance(text, int):
        return text
    match = _SIZE.match(str(text))
    if not match:
        raise ValueError(f"{text!r} is not a size (e.g. 16GiB, 512MiB, 2GB, 1000000)")
    return int(float(match.group(1)) * _UNITS[(match.group(2) or "b").lower()])


def format_size(size: int) -> str:
    """Bytes as a short readable size (``16 GiB``)."""
    for unit, factor in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if size >= factor:
            return f"{size / factor:.3g} {unit}"
    return f"{size} B"


@dataclass(frozen=True)
class PerfSettings:
    """How each passed item is timed (``pytest --perf``; recorded in every record)."""

    threads: int = 1                # INFERENCE_NUM_THREADS and torch.set_num_threads
    budget_seconds: float = 0.2     # per side (OpenVINO, torch) and item, after the minimum repeats
    min_repeats: int = 5
    max_repeats: int = 2000
    warmup: int = 2
