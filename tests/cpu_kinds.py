"""The kinds of x86 CPU the harness must be green on, as Linux /proc/cpuinfo flags.

``FEATURES`` is what ``conformance.cpu`` must make of each (oneDNN feature names);
``cpuinfo(kind)`` is a /proc/cpuinfo text for ``CONFORMANCE_CPUINFO``.
"""
from __future__ import annotations

_BASE = "fpu sse sse2 ssse3 sse4_1 sse4_2 popcnt avx f16c fma"
# The kinds the harness must be green on (flags as Linux lists them).
AVX2_ONLY = f"{_BASE} avx2 bmi2 sha_ni vaes"                                          # AMD EPYC 7xx3 (Zen 3)
SKYLAKE = f"{_BASE} avx2 avx512f avx512dq avx512cd avx512bw avx512vl"                 # Xeon Skylake-SP
AMD_AVX512_BF16 = f"{SKYLAKE} avx512ifma avx512vbmi avx512_vnni avx512_bf16 avx512_bitalg"  # EPYC 9xx4 (Zen 4)
ICELAKE = f"{SKYLAKE} avx512ifma avx512vbmi avx512_vnni avx512_vbmi2 avx512_bitalg"  # Xeon Ice Lake-SP
INTEL_AMX = f"{SKYLAKE} avx_vnni avx512_vnni avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8"  # Sapphire Rapids
INTEL_AMX_FP16 = f"{INTEL_AMX} amx_fp16"                                               # Xeon Granite Rapids

FEATURES = {
    "avx2_only": ("sse41", "avx", "avx2"),
    "skylake": ("sse41", "avx", "avx2", "avx512_core"),
    "icelake": ("sse41", "avx", "avx2", "avx512_core", "avx512_core_vnni"),
    "amd_avx512_bf16": ("sse41", "avx", "avx2", "avx512_core", "avx512_core_vnni", "avx512_core_bf16"),
    "intel_amx": ("sse41", "avx", "avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni", "avx512_core_bf16",
                  "avx512_core_fp16", "amx_int8", "amx_bf16", "avx512_core_amx"),
    "intel_amx_fp16": ("sse41", "avx", "avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni", "avx512_core_bf16",
                       "avx512_core_fp16", "amx_int8", "amx_bf16", "amx_fp16", "avx512_core_amx",
                       "avx512_core_amx_fp16"),
}
FLAGS = {"avx2_only": AVX2_ONLY, "skylake": SKYLAKE, "icelake": ICELAKE, "amd_avx512_bf16": AMD_AVX512_BF16,
         "intel_amx": INTEL_AMX, "intel_amx_fp16": INTEL_AMX_FP16}


MODELS = {"avx2_only": "AMD EPYC 7763 64-Core Processor", "skylake": "Intel(R) Xeon(R) Gold 6148 CPU @ 2.40GHz",
          "icelake": "Intel(R) Xeon(R) Processor @ 2.60GHz", "amd_avx512_bf16": "AMD EPYC 9654 96-Core Processor",
          "intel_amx": "Intel(R) Xeon(R) Platinum 8480+", "intel_amx_fp16": "Intel(R) Xeon(R) 6979P"}


def cpuinfo(kind: str) -> str:
    """A two-processor /proc/cpuinfo text for a CPU of this kind."""
    return "".join(f"processor\t: {index}\nvendor_id\t: x\nmodel name\t: {MODELS[kind]}\nflags\t\t: {FLAGS[kind]}\n\n"
                   for index in range(2))
