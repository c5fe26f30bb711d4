"""conformance.cpu: cpuinfo flags -> oneDNN features, and what an ISA cap leaves, for the kinds of x86 CPU.

Synthetic flag sets, so these hold whatever machine runs them.
"""
from __future__ import annotations

import pytest

from conformance import cpu
from conformance.targets import ISA_CAPS
from cpu_kinds import FEATURES, FLAGS, cpuinfo

@pytest.mark.parametrize("kind", FEATURES)
def test_flags_map_to_onednn_features(kind):
    assert cpu.features_from_flags(FLAGS[kind].split()) == FEATURES[kind]


@pytest.mark.parametrize("kind, cap, expected", [
    ("avx2_only", None, ("sse41", "avx", "avx2")),
    ("avx2_only", "avx2", ("sse41", "avx", "avx2")),
    ("avx2_only", "avx512_core_amx", ("sse41", "avx", "avx2")),       # a cap above the CPU changes nothing
    ("avx2_only", "sse41", ("sse41",)),
    ("skylake", "avx2", ("sse41", "avx", "avx2")),
    ("skylake", "all", FEATURES["skylake"]),
    ("amd_avx512_bf16", "avx512_core", ("sse41", "avx", "avx2", "avx512_core")),
    ("amd_avx512_bf16", "avx512_core_vnni", ("sse41", "avx", "avx2", "avx512_core", "avx512_core_vnni")),
    ("amd_avx512_bf16", "avx2_vnni", ("sse41", "avx", "avx2")),
    # The avx512_core* caps lack avx2_vnni's bit (0x8): oneDNN hides AVX-VNNI under them.
    ("intel_amx_fp16", "avx512_core_vnni", ("sse41", "avx", "avx2", "avx512_core", "avx512_core_vnni")),
    ("intel_amx_fp16", "avx2_vnni", ("sse41", "avx", "avx2", "avx2_vnni")),
    ("intel_amx_fp16", "avx512_core_bf16", ("sse41", "avx", "avx2", "avx512_core", "avx512_core_vnni",
                                            "avx512_core_bf16")),
    ("intel_amx_fp16", "avx10_1_512", ("sse41", "avx", "avx2", "avx2_vnni", "avx512_core", "avx512_core_vnni",
                                       "avx512_core_bf16", "avx512_core_fp16")),
    ("intel_amx_fp16", "avx512_core_amx", FEATURES["intel_amx_fp16"][:-3] + ("avx512_core_amx",)),
    ("intel_amx_fp16", None, FEATURES["intel_amx_fp16"]),
])
def test_effective_features_under_a_cap(kind, cap, expected):
    native = cpu.features_from_flags(FLAGS[kind].split())
    assert cpu.effective_features(native, cap) == expected


def test_every_isa_cap_the_targets_accept_has_a_mask():
    assert set(cpu.CAP_MASKS) == set(ISA_CAPS)


def test_each_feature_mask_is_within_the_cap_of_its_own_name():
    for name, mask in cpu.FEATURE_MASKS.items():
        if name in cpu.CAP_MASKS:
            assert cpu.CAP_MASKS[name] == mask, name


@pytest.mark.parametrize("kind, bf16, f16", [
    ("avx2_only", False, False), ("skylake", True, False), ("icelake", True, False), ("amd_avx512_bf16", True, False),
    ("intel_amx", True, True), ("intel_amx_fp16", True, True)])
def test_which_cpus_support_bf16_and_f16_hints(kind, bf16, f16):
    native = cpu.features_from_flags(FLAGS[kind].split())
    assert cpu.supports_precision_hint(native, "bf16") is bf16      # avx512_core (emulated bf16) is enough
    # ... but only avx512_core_bf16 (or avx2_vnni_2) is bf16 in hardware
    assert cpu.supports_precision_natively(native, "bf16") is ("avx512_core_bf16" in native)
    assert cpu.supports_precision_natively(native, "f16") is f16
    assert cpu.supports_precision_hint(native, "f16") is f16
    assert cpu.supports_precision_hint(native, "f32")
    assert not cpu.supports_precision_hint(cpu.effective_features(native, "avx2"), "bf16")


@pytest.mark.parametrize("kind, under_bf16, under_f16", [
    ("avx2_only", "f32", "f32"), ("skylake", "bf16", "f32"), ("icelake", "bf16", "f32"),
    ("amd_avx512_bf16", "bf16", "bf16"), ("intel_amx", "bf16", "f16"), ("intel_amx_fp16", "bf16", "f16")])
def test_an_unsupported_hint_runs_in_the_plugins_default_precision(kind, under_bf16, under_f16):
    native = cpu.features_from_flags(FLAGS[kind].split())
    assert cpu.hint_runs_in(native, "f32") == "f32"
    assert cpu.hint_runs_in(native, "bf16") == under_bf16
    assert cpu.hint_runs_in(native, "f16") == under_f16     # Zen 4: no avx512_fp16, bf16 is its default
    assert cpu.hint_runs_in(cpu.effective_features(native, "avx2"), "f16") == "f32"


def test_feature_names_aliases_and_typos():
    assert cpu.canonical_feature("AVX10_1_512") == "avx512_core_fp16"
    assert cpu.canonical_feature("avx512_core_vnni") == "avx512_core_vnni"
    with pytest.raises(ValueError, match="did you mean 'avx512_core_bf16'"):
        cpu.canonical_feature("avx512_core_bf61")
    with pytest.raises(ValueError, match="a /proc/cpuinfo flag, the oneDNN feature is 'avx512_core_bf16'"):
        cpu.canonical_feature("avx512_bf16")


def test_cpuinfo_text_gives_model_flags_and_features(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text(cpuinfo("amd_avx512_bf16"))
    info = cpu.read_cpu(path)
    assert info.model == "AMD EPYC 9654 96-Core Processor" and info.features == FEATURES["amd_avx512_bf16"]
    assert "avx512_bf16" in info.flags
    assert info.describe().startswith("AMD EPYC 9654 96-Core Processor (sse41 avx avx2 avx512_core")


def test_an_unreadable_cpuinfo_knows_no_features(tmp_path):
    info = cpu.read_cpu(tmp_path / "absent")
    assert info.features == () and info.model


def test_a_target_without_a_cap_runs_under_the_process_cap(monkeypatch):
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    assert (cpu.target_cap(None), cpu.target_cap("sse41")) == ("avx2", "sse41")
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX9")           # oneDNN ignores what it does not know
    assert cpu.target_cap(None) is None
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA")
    assert cpu.target_cap(None) is None
