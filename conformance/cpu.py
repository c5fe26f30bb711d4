"""What CPU this is, in oneDNN's ISA names, without importing OpenVINO.

The CPU plugin's kernels (and so some known deviations) depend on which oneDNN
ISAs the machine has and which an ``ONEDNN_MAX_CPU_ISA`` cap leaves usable.
This module answers both from ``/proc/cpuinfo`` alone, so collection (which
decides strict xfails) never imports OpenVINO.

Feature names are oneDNN's ``cpu_isa_t`` names (lower case, as in
``ONEDNN_MAX_CPU_ISA``), each present when the Linux cpuinfo flags oneDNN's
``mayiuse()`` checks are all there (src/cpu/x64/cpu_isa_traits.hpp):

====================  ======================================================  ========
feature               Linux /proc/cpuinfo flags (and features it needs)        mask
====================  ======================================================  ========
sse41                 sse4_1                                                   0x1
avx                   avx                                                      0x3
avx2                  avx2                                                     0x7
avx2_vnni             avx2 + avx_vnni (the VEX AVX-VNNI, not avx512_vnni)      0xf
avx2_vnni_2           avx2_vnni + avx_vnni_int8 + avx_ne_convert               0x1f
avx512_core           avx512f avx512bw avx512vl avx512dq                       0x27
avx512_core_vnni      avx512_core + avx512_vnni                                0x67
avx512_core_bf16      avx512_core_vnni + avx512_bf16                           0xe7
avx512_core_fp16      avx512_core_bf16 + avx2_vnni + avx512_fp16               0x1ef
amx_int8              amx_tile + amx_int8                                      0x600
amx_bf16              amx_tile + amx_bf16                                      0xa00
amx_fp16              amx_tile + amx_fp16                                      0x1200
avx512_core_amx       avx512_core_fp16 + amx_int8 + amx_bf16                   0xfef
avx512_core_amx_fp16  avx512_core_amx + amx_fp16                               0x1fef
====================  ======================================================  ========

oneDNN's aliases are accepted wherever a feature is named: ``avx10_1_512`` =
``avx512_core_fp16``, ``avx10_1_512_amx`` = ``avx512_core_amx``,
``avx10_1_512_amx_fp16`` = ``avx512_core_amx_fp16``.

An ISA cap is a bit mask (oneDNN's ``dnnl_cpu_isa_t`` values: sse41 0x1, avx
0x3, avx2 0x7, avx2_vnni 0xf, avx2_vnni_2 0x1f, avx512_core 0x27,
avx512_core_vnni 0x67, avx512_core_bf16 0xe7, avx512_core_fp16/avx10_1_512
0x1ef, avx512_core_amx 0xfef, avx512_core_amx_fp16 0x1fef); a feature stays
usable under a cap when its mask is a subset of the cap's (``mayiuse``:
``(cap & isa) == isa``). So the *effective* features under a cap are the
native ones the cap's mask covers. Not a simple order: ``avx512_core`` and
``avx512_core_vnni`` caps hide ``avx2_vnni`` (bit 0x8), and the AMX caps hide
``avx2_vnni_2`` (bit 0x10).

Limits: a kernel that does not list avx_vnni_int8/avx_ne_convert (older Linux)
hides ``avx2_vnni_2``; AMX is taken as usable when cpuinfo lists it (Linux >=
5.16 grants it on request). Off Linux, or off x86, the flag list is empty and
no feature is known. ``CONFORMANCE_CPUINFO`` names a file to read instead of
``/proc/cpuinfo`` (the harness's own tests use it to play other machines).
"""
from __future__ import annotations

import difflib
import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

# oneDNN's cpu_isa_bit_t.
_SSE41, _AVX, _AVX2, _AVX_VNNI, _AVX_VNNI_2 = 1 << 0, 1 << 1, 1 << 2, 1 << 3, 1 << 4
_AVX512_CORE, _AVX512_VNNI, _AVX512_BF16, _AVX512_FP16 = 1 << 5, 1 << 6, 1 << 7, 1 << 8
_AMX_TILE, _AMX_INT8, _AMX_BF16, _AMX_FP16 = 1 << 9, 1 << 10, 1 << 11, 1 << 12

# Each feature: (oneDNN cpu_isa_t mask, cpuinfo flags it needs, features it needs), in dependency order.
_FEATURES: dict[str, tuple[int, tuple[str, ...], tuple[str, ...]]] = {}
_FEATURES["sse41"] = (_SSE41, ("sse4_1",), ())
_FEATURES["avx"] = (_AVX | _SSE41, ("avx",), ())
_FEATURES["avx2"] = (_AVX2 | _FEATURES["avx"][0], ("avx2",), ())
_FEATURES["avx2_vnni"] = (_AVX_VNNI | _FEATURES["avx2"][0], ("avx_vnni",), ("avx2",))
_FEATURES["avx2_vnni_2"] = (_AVX_VNNI_2 | _FEATURES["avx2_vnni"][0], ("avx_vnni_int8", "avx_ne_convert"),
                            ("avx2_vnni",))
_FEATURES["avx512_core"] = (_AVX512_CORE | _FEATURES["avx2"][0], ("avx512f", "avx512bw", "avx512vl", "avx512dq"), ())
_FEATURES["avx512_core_vnni"] = (_AVX512_VNNI | _FEATURES["avx512_core"][0], ("avx512_vnni",), ("avx512_core",))
_FEATURES["avx512_core_bf16"] = (_AVX512_BF16 | _FEATURES["avx512_core_vnni"][0], ("avx512_bf16",),
                                 ("avx512_core_vnni",))
_FEATURES["avx512_core_fp16"] = (_AVX512_FP16 | _AVX_VNNI | _FEATURES["avx512_core_bf16"][0], ("avx512_fp16",),
                                 ("avx512_core_bf16", "avx2_vnni"))
_FEATURES["amx_int8"] = (_AMX_INT8 | _AMX_TILE, ("amx_tile", "amx_int8"), ())
_FEATURES["amx_bf16"] = (_AMX_BF16 | _AMX_TILE, ("amx_tile", "amx_bf16"), ())
_FEATURES["amx_fp16"] = (_AMX_FP16 | _AMX_TILE, ("amx_tile", "amx_fp16"), ())
_FEATURES["avx512_core_amx"] = (_FEATURES["avx512_core_fp16"][0] | _AMX_INT8 | _AMX_BF16 | _AMX_TILE, (),
                                ("avx512_core_fp16", "amx_int8", "amx_bf16"))
_FEATURES["avx512_core_amx_fp16"] = (_FEATURES["avx512_core_amx"][0] | _AMX_FP16, (),
                                     ("avx512_core_amx", "amx_fp16"))

FEATURES: tuple[str, ...] = tuple(_FEATURES)
"""Every feature name, lowest first."""

FEATURE_MASKS: dict[str, int] = {name: mask for name, (mask, _, _) in _FEATURES.items()}

# A cpuinfo flag -> the first feature that needs it (to correct a flag given as a feature name).
_FEATURE_OF_FLAG: dict[str, str] = {}
for _name, (_, _flags, _) in _FEATURES.items():
    for _flag in _flags:
        _FEATURE_OF_FLAG.setdefault(_flag, _name)

ALIASES = {"avx10_1_512": "avx512_core_fp16", "avx10_1_512_amx": "avx512_core_amx",
           "avx10_1_512_amx_fp16": "avx512_core_amx_fp16"}

# ONEDNN_MAX_CPU_ISA values (lower case) -> oneDNN's dnnl_cpu_isa_t mask; "all" hides nothing.
CAP_MASKS: dict[str, int] = {
    "sse41": 0x1, "avx": 0x3, "avx2": 0x7, "avx2_vnni": 0xF, "avx2_vnni_2": 0x1F, "avx512_core": 0x27,
    "avx512_core_vnni": 0x67, "avx512_core_bf16": 0xE7, "avx512_core_fp16": 0x1EF, "avx10_1_512": 0x1EF,
    "avx512_core_amx": 0xFEF, "avx10_1_512_amx": 0xFEF, "avx512_core_amx_fp16": 0x1FEF,
    "avx10_1_512_amx_fp16": 0x1FEF, "all": ~0,
}

# The features with which OpenVINO's CPU plugin accepts a bf16/f16 INFERENCE_PRECISION_HINT
# (hasHardwareSupport in src/plugins/intel_cpu/src/utils/precision_support.cpp: bf16 with
# avx512_core, oneDNN emulating bf16 where avx512_core_bf16 is missing, or avx2_vnni_2; f16 with
# avx512_core_fp16 or avx2_vnni_2). Without one of them the hint is ignored (``hint_runs_in``).
PRECISION_HINT_FEATURES = {"bf16": ("avx512_core", "avx2_vnni_2"), "f16": ("avx512_core_fp16", "avx2_vnni_2")}
# Of those, the ones that do bf16/f16 in hardware. The plugin sees these by cpuid whatever
# ONEDNN_MAX_CPU_ISA says, and a cap that hides them leaves it picking kernels oneDNN then refuses
# (the compile fails). avx512_core alone only emulates bf16, and the plugin asks oneDNN, which
# honours the cap: a capped bf16 hint then runs in f32 (observed on an Ice Lake Xeon, 2026-12-02).
NATIVE_PRECISION_FEATURES = {"bf16": ("avx512_core_bf16", "avx2_vnni_2"), "f16": PRECISION_HINT_FEATURES["f16"]}


def canonical_feature(name: str) -> str:
    """A feature name as this module spells it (aliases resolved); ``ValueError`` if unknown."""
    lowered = str(name).strip().lower()
    lowered = ALIASES.get(lowered, lowered)
    if lowered not in _FEATURES:
        if lowered in _FEATURE_OF_FLAG:
            hint = f"; that is a /proc/cpuinfo flag, the oneDNN feature is {_FEATURE_OF_FLAG[lowered]!r}"
        else:
            close = difflib.get_close_matches(lowered, [*FEATURES, *ALIASES], n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
        raise ValueError(f"unknown CPU feature {name!r}{hint} (known: {', '.join(FEATURES)})")
    return lowered


def features_from_flags(flags) -> tuple[str, ...]:
    """The oneDNN features a CPU with these cpuinfo ``flags`` has, lowest first."""
    flags = set(flags)
    found: list[str] = []
    for name, (_, needs_flags, needs_features) in _FEATURES.items():
        if all(flag in flags for flag in needs_flags) and all(need in found for need in needs_features):
            found.append(name)
    return tuple(found)


def effective_features(features, cap: str | None) -> tuple[str, ...]:
    """``features`` that oneDNN still uses under ``ONEDNN_MAX_CPU_ISA=cap`` (``None``: no cap)."""
    if cap is None:
        return tuple(name for name in FEATURES if name in set(features))
    cap = str(cap).lower()
    if cap not in CAP_MASKS:
        raise ValueError(f"ISA cap {cap!r} is not one of {', '.join(CAP_MASKS)}")
    allowed = CAP_MASKS[cap]
    return tuple(name for name in FEATURES if name in set(features)
                 and FEATURE_MASKS[name] & allowed == FEATURE_MASKS[name])


def supports_precision_hint(features, precision: str) -> bool:
    """True when the CPU plugin, given these features, runs a ``precision`` hint (bf16/f16) in that
    precision rather than f32 (``PRECISION_HINT_FEATURES``); always True for f32."""
    return precision == "f32" or any(name in set(features) for name in PRECISION_HINT_FEATURES.get(precision, ()))


def hint_runs_in(features, precision: str) -> str:
    """The precision the CPU plugin runs an f32 model in under a ``precision`` hint, given these features.

    A hint the features support is taken; one they don't is ignored and the plugin's default stays
    (``Config::readProperties`` in src/plugins/intel_cpu/src/config.cpp): bf16 where oneDNN may use
    avx512_core_bf16, else f32. So an f16 hint runs in bf16 on an AMD EPYC Zen 4 (avx512_bf16, no
    avx512_fp16; observed 2026-12-02, OpenVINO 2026.4.1), in f32 on an Ice Lake Xeon."""
    if supports_precision_hint(features, precision):
        return precision
    return "bf16" if "avx512_core_bf16" in set(features) else "f32"


def supports_precision_natively(features, precision: str) -> bool:
    """True when these features do a bf16/f16 hint in hardware (``NATIVE_PRECISION_FEATURES``); True for f32."""
    return precision == "f32" or any(name in set(features) for name in NATIVE_PRECISION_FEATURES.get(precision, ()))


def process_isa_cap() -> str | None:
    """The ``ONEDNN_MAX_CPU_ISA`` this process (and workers it starts) runs under, if a known cap.

    A target without a cap of its own inherits it (tox passes it through); oneDNN ignores
    values it does not know, and so does this.
    """
    value = os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().lower()
    return value if value in CAP_MASKS else None


def target_cap(isa_cap: str | None) -> str | None:
    """The ISA cap a target's kernels run under: its own, else the process's (``process_isa_cap``)."""
    return isa_cap if isa_cap is not None else process_isa_cap()


@dataclass(frozen=True)
class CpuInfo:
    """A CPU: its model name, its cpuinfo flags, and the oneDNN features they give."""

    model: str
    flags: frozenset
    features: tuple[str, ...]

    def effective(self, cap: str | None) -> tuple[str, ...]:
        """The features oneDNN uses under the ISA cap ``cap`` (``None``: all of them)."""
        return effective_features(self.features, cap)

    def describe(self) -> str:
        """One line: model and features, e.g. ``AMD EPYC (sse41 avx avx2)``."""
        return f"{self.model} ({' '.join(self.features) or 'no known x86 ISA features'})"


def parse_cpuinfo(text: str, fallback_model: str = "unknown") -> CpuInfo:
    """A ``CpuInfo`` from the text of ``/proc/cpuinfo`` (the first processor's model and flags)."""
    model, flags = None, None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "model name" and model is None and value.strip():
            model = value.strip()
        elif key == "flags" and flags is None:
            flags = value.split()
    flags = frozenset(flags or ())
    return CpuInfo(model or fallback_model, flags, features_from_flags(flags))


def read_cpu(path: Path | str | None = None) -> CpuInfo:
    """This machine's CPU from ``path`` (default: ``$CONFORMANCE_CPUINFO``, else ``/proc/cpuinfo``).

    Where the file cannot be read (not Linux), the model is ``platform.processor()``
    and no flags, hence no features, are known.
    """
    path = Path(path or os.environ.get("CONFORMANCE_CPUINFO") or "/proc/cpuinfo")
    fallback = platform.processor() or platform.machine() or "unknown"
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return CpuInfo(fallback, frozenset(), ())
    return parse_cpuinfo(text, fallback)


@lru_cache(maxsize=1)
def this_cpu() -> CpuInfo:
    """This machine's CPU, read once per process."""
    return read_cpu()
