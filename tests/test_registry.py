"""The expected-failure registry: fields, located errors, release ranges, CPU conditions, signatures, and
strict xfail and XPASS through the plugin."""
from __future__ import annotations

import os

import pytest

from conformance import cpu, expectations
from conformance.case import CaseError
from cpu_kinds import cpuinfo
from reporting_support import REPO_ROOT, make_suite, read_json

@pytest.fixture(autouse=True)
def _no_process_isa_cap(monkeypatch):
    """The synthetic CPUs below are matched uncapped unless a test names a cap (tox passes ONEDNN_MAX_CPU_ISA)."""
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)


REGISTRY = """\
# known deviations
- case: "backprop.yaml::explicit_*"
  target: "CPU-*"
  openvino: "2026.4.*"
  reason: "all padding at the end"
  spec_note: "docs/spec-notes.md#sn-6"
- case: "*::depthwise*"
  openvino: "2025.*"
  reason: "older release only"
"""


@pytest.fixture
def registry(tmp_path):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(REGISTRY)
    return expectations.load_registry(path)


@pytest.mark.parametrize("case_id, target_id, version, expected_line", [
    ("backprop.yaml::explicit_output_shape[s=2]", "CPU-f32", "2026.4.1-22982-e213a147257-releases/2026/4", 2),
    ("backprop.yaml::explicit_output_shape", "CPU-bf16-avx2", "2026.4.0", 2),
    ("backprop.yaml::explicit_output_shape", "GPU-f32", "2026.4.1", None),     # target pattern
    ("backprop.yaml::explicit_output_shape", "CPU-f32", "2026.5.0", None),     # release pattern
    ("backprop.yaml::same_upper", "CPU-f32", "2026.4.1", None),                # case pattern
    ("conv.yaml::depthwise_3x3", "NPU-f16", "2025.3.0-123-abc", 7),            # target defaults to "*"
    ("conv.yaml::depthwise_3x3", "CPU-f32", "2026.4.1", None),
])
def test_entries_match_case_target_and_release(registry, case_id, target_id, version, expected_line):
    entry = expectations.match(registry, case_id, target_id, version)
    assert (entry.source if entry else None) == (f"expected_failures.yaml:{expected_line}" if expected_line else None)


def test_release_is_the_version_without_the_build():
    assert expectations.release_of("2026.4.1-22982-e213a147257-releases/2026/4") == "2026.4.1"


def test_description_says_how_to_update_the_registry(registry):
    text = registry[0].describe()
    assert "all padding at the end" in text and "docs/spec-notes.md#sn-6" in text
    assert "update the expected-failure registry" in text and "expected_failures.yaml:2" in text


@pytest.mark.parametrize("text, where", [
    ("- case: a\n  openvino: '1'\n  reason: r\n  reson: typo\n", "expected_failures.yaml:4: reson: unknown field"),
    ("- case: a\n  openvino: '1'\n", "expected_failures.yaml:1: reason: is required"),
    ("- case: a\n  openvino: '1'\n  reason: ''\n", "expected_failures.yaml:3: reason: is required"),
    ("- case: a\n  openvino: 2026.4\n  reason: r\n", "expected_failures.yaml:2: openvino: must be a quoted string"),
    ("- case: a\n  reason: r\n", "expected_failures.yaml:1: openvino: is required"),
    ("- case: a\n  target: [CPU]\n  openvino: '1'\n  reason: r\n",
     "expected_failures.yaml:2: target: must be a non-empty string"),
    # the fields added for CPU-dependent, release-range and fuzzing entries
    ("- openvino: '1'\n  reason: r\n  target: CPU-*\n", "expected_failures.yaml:1: case: is required unless the entry "
                                                       "has a signature"),
    ("- case: a\n  openvino: '>=2026.4,<<2026.5'\n  reason: r\n",
     "expected_failures.yaml:2: openvino: '>=2026.4,<<2026.5' is not a PEP 440 release range"),
    ("- case: a\n  openvino: ''\n  reason: r\n", "expected_failures.yaml:2: openvino: must be a quoted string"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  fails: crash\n",
     "expected_failures.yaml:4: fails: 'crash' is not one of mismatch, error, crashed, hung"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  origin: 3\n", "expected_failures.yaml:4: origin: must be a non-empty"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu: [avx2]\n", "expected_failures.yaml:4: cpu: expected a mapping"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu:\n    lack: [avx2]\n",
     "expected_failures.yaml:5: cpu.lack: unknown field (allowed: has, lacks, machine_has, machine_lacks)"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu:\n    lacks:\n      - avx2\n      - avx512_vnni\n",
     "expected_failures.yaml:7: cpu.lacks: unknown CPU feature 'avx512_vnni'; that is a /proc/cpuinfo flag, "
     "the oneDNN feature is 'avx512_core_vnni'"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu: {has: []}\n",
     "expected_failures.yaml:4: cpu.has: expected a non-empty list"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu: {has: [avx2], lacks: [AVX2]}\n",
     "expected_failures.yaml:4: cpu: avx2 in both has: and lacks:"),
    # machine_has / machine_lacks: the machine's own CPU, before any ISA cap
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu:\n    lacks: [avx512_core]\n    machine_lacks: avx512_core\n",
     "expected_failures.yaml:6: cpu.machine_lacks: expected a non-empty list"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu:\n    machine_has:\n      - avx2\n      - avx512f\n",
     "expected_failures.yaml:7: cpu.machine_has: unknown CPU feature 'avx512f'; that is a /proc/cpuinfo flag"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu: {machine_has: [avx2], machine_lacks: [avx2]}\n",
     "expected_failures.yaml:4: cpu: avx2 in both machine_has: and machine_lacks:"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  cpu: {has: [avx512_core], machine_lacks: [avx512_core]}\n",
     "expected_failures.yaml:4: cpu: avx512_core in both has: and machine_lacks: (never true)"),
    ("- signature: {op: Deconvolution}\n  openvino: '1'\n  reason: r\n",
     "expected_failures.yaml:1: signature.op: 'Deconvolution' is not one of GroupConvolution"),
    ("- openvino: '1'\n  reason: r\n  signature:\n    op: GroupConvolution\n    primitve: jit_*\n",
     "expected_failures.yaml:5: signature.primitve: unknown field"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  signature: {}\n",
     "expected_failures.yaml:4: signature: expected a mapping"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  signature: {attributes: [auto_pad]}\n",
     "expected_failures.yaml:4: signature.attributes: expected a mapping"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  signature:\n    attributes:\n      auto pad: valid\n",
     "expected_failures.yaml:6: signature.attributes: 'auto pad' is not an attribute-class key"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  signature:\n    attributes:\n      groups: [1, 2]\n",
     "expected_failures.yaml:6: signature.attributes.groups: must be a string glob or a number"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  signature: {primitive: ''}\n",
     "expected_failures.yaml:4: signature.primitive: must be a non-empty string"),
    # signature.message: globs over the message class, of the entry's failure kind
    ("- case: a\n  openvino: '1'\n  reason: r\n  fails: error\n  signature:\n    message: ''\n",
     "expected_failures.yaml:6: signature.message: must be a non-empty string glob"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  fails: error\n  signature:\n    message: []\n",
     "expected_failures.yaml:6: signature.message: expected a glob or a non-empty list of globs"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  fails: error\n  signature:\n    message:\n      - 'error: *'\n"
     "      - 3\n", "expected_failures.yaml:8: signature.message: must be a non-empty string glob"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  signature:\n    op: GroupConvolution\n"
     "    message: 'error: compile: *'\n",   # fails defaults to mismatch: the glob can never match
     "expected_failures.yaml:6: signature.message: 'error: compile: *' never matches a 'mismatch' finding"),
    ("- case: a\n  openvino: '1'\n  reason: r\n  fails: crashed\n  signature: {message: SIGSEGV}\n",
     "expected_failures.yaml:5: signature.message: 'SIGSEGV' never matches a 'crashed' finding"),
    ("- id: x\n  case: a\n  openvino: '1'\n  reason: r\n- id: x\n  case: b\n  openvino: '1'\n  reason: r\n",
     "expected_failures.yaml:5: id: 'x' is already the id of the entry on line 1"),
    ("case: a\n", "expected_failures.yaml:1: expected a list of entries"),
    ("- case: a\n  - b\n", "expected_failures.yaml:2: YAML syntax error"),
    ("- just a string\n", "expected_failures.yaml:1: every entry must be a mapping"),
])
def test_registry_errors_name_file_line_and_field(tmp_path, text, where):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(text)
    with pytest.raises(CaseError) as error:
        expectations.load_registry(path)
    assert str(error.value).startswith(str(tmp_path / where))


def _registry_for(pytester, case_pattern: str) -> None:
    pytester.path.joinpath("expected_failures.yaml").write_text(
        f'- case: "{case_pattern}"\n  openvino: "*"\n  reason: "injected deviation"\n')


def test_matching_failure_is_xfailed_and_the_run_passes(pytester):
    make_suite(pytester, corrupt=True)
    _registry_for(pytester, "conv.yaml::broken_*")
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, xfailed=1)
    assert result.ret == 0
    items = read_json(pytester.path / "reports" / "conformance.json")["items"]
    (broken,) = [item for item in items if "broken" in item["case_id"]]
    assert broken["outcome"] == "xfailed" and "injected deviation" in broken["reason"]
    assert broken["repro"]  # a known deviation keeps its evidence


def test_xpass_fails_the_run_and_says_to_update_the_registry(pytester):
    make_suite(pytester)
    _registry_for(pytester, "conv.yaml::ok_a*")
    result = pytester.runpytest("-rA")
    result.assert_outcomes(passed=3, failed=2)
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*XPASS(strict)*injected deviation*If this item now passes (XPASS), OpenVINO "
                                 "changed: update the expected-failure registry, removing or narrowing the entry "
                                 "at expected_failures.yaml:1*"])
    document = read_json(pytester.path / "reports" / "conformance.json")
    assert document["summary"]["totals"]["xpassed"] == 2
    assert "**xpassed**" in (pytester.path / "reports" / "conformance.md").read_text()


def test_an_intermittent_entry_is_non_strict_both_ways(pytester):
    """``intermittent: true``: a registered failure is xfailed and a pass is a pass (the run passes
    either way, the record keeps the registry's reason); a failure of another kind still fails."""
    make_suite(pytester, corrupt=True)
    pytester.path.joinpath("expected_failures.yaml").write_text(
        '- case: "conv.yaml::*"\n  openvino: "*"\n  intermittent: true\n  reason: "flaky deviation"\n')
    result = pytester.runpytest()
    result.assert_outcomes(passed=2, xfailed=1, xpassed=2)   # conv.yaml's 3 items; backprop.yaml's 2 pass
    assert result.ret == 0
    items = [item for item in read_json(pytester.path / "reports" / "conformance.json")["items"]
             if item["case_id"].startswith("conv.yaml")]
    assert sorted(item["outcome"] for item in items) == ["passed", "passed", "xfailed"]
    assert all("known intermittent deviation" in item["reason"] and "flaky deviation" in item["reason"]
               for item in items)


def test_min_threads_holds_only_with_that_many_inference_threads(tmp_path, monkeypatch):
    path = tmp_path / "expected_failures.yaml"
    path.write_text('- case: "a.yaml::*"\n  openvino: "*"\n  reason: "r"\n  min_threads: 2\n')
    [entry] = expectations.load_registry(path)
    assert expectations.match([entry], "a.yaml::x", "CPU-f32", "2026.4.1", threads=2) is entry
    assert expectations.match([entry], "a.yaml::x", "CPU-f32", "2026.4.1", threads=1) is None
    assert expectations.match([entry], "a.yaml::x", "CPU-f32", "2026.4.1") is None   # unknown
    assert "2+ inference threads" in entry.describe()
    from conformance import worker
    monkeypatch.setenv(worker.CPU_THREADS_VARIABLE, "1")
    assert worker.planned_inference_threads() == 1
    path.write_text('- case: "a.yaml::*"\n  openvino: "*"\n  reason: "r"\n  min_threads: 0\n')
    with pytest.raises(CaseError) as error:
        expectations.load_registry(path)
    assert error.value.line == 4 and error.value.field == "min_threads"


def test_intermittent_must_be_a_boolean(tmp_path):
    path = tmp_path / "expected_failures.yaml"
    path.write_text('- case: "a.yaml::*"\n  openvino: "*"\n  reason: "r"\n  intermittent: "sometimes"\n')
    with pytest.raises(CaseError) as error:
        expectations.load_registry(path)
    assert error.value.line == 4 and error.value.field == "intermittent"


def test_a_broken_registry_fails_items_with_its_location(pytester):
    make_suite(pytester)
    pytester.path.joinpath("expected_failures.yaml").write_text("- case: a\n  openvino: '1'\n  reason: r\n  why: x\n")
    result = pytester.runpytest()
    assert result.ret != 0
    result.stdout.fnmatch_lines(["*expected_failures.yaml:4: why: unknown field*"])


def test_the_old_format_still_loads_with_the_new_fields_at_their_defaults(registry):
    first = registry[0]
    assert (first.case, first.target, first.openvino, first.fails) == ("backprop.yaml::explicit_*", "CPU-*",
                                                                       "2026.4.*", "mismatch")
    assert (first.cpu, first.signature, first.origin, first.id) == (None, None, None, None)
    assert registry[1].target == "*"


@pytest.mark.parametrize("written, release, inside", [
    ("2026.4.*", "2026.4.1", True), ("2026.4.*", "2026.5.0", False), ("2026.*", "2026.10.2", True),
    (">=2024.1,<2026.5", "2026.4.1", True), (">=2024.1,<2026.5", "2026.5.0", False),
    (">=2024.1,<2026.5", "2023.3.0", False), (">=2024.1,<2026.5", "2024.1.0", True),
    ("==2026.4.*", "2026.4.1", True), (">=2026.4,<2026.5", "2026.4.1rc1", True),  # pre-releases count...
    ("<2026.5", "2026.5.0rc1", False),                     # ...but, as PEP 440 says, "<V" excludes V's own
    ("!=2026.4.0", "2026.4.0", False), ("~=2026.4.0", "2026.4.9", True), ("~=2026.4.0", "2026.5.0", False),
    (">=2024.1", "not-a-version", False),
])
def test_openvino_field_is_a_release_glob_or_a_pep440_range(written, release, inside):
    assert expectations.parse_release_range(written).contains(release) is inside


CPU_REGISTRY = """\
- id: without-vnni
  case: "*::i8_*"
  target: "CPU-*"
  openvino: ">=2026.4,<2026.5"
  cpu: {lacks: [avx512_core_vnni, avx2_vnni]}
  reason: "i8 without VNNI"
- case: "*::bf16_*"
  openvino: "2026.4.*"
  cpu: {has: [avx10_1_512]}       # an alias: avx512_core_fp16
  reason: "needs fp16"
"""


@pytest.mark.parametrize("kind, cap, without_vnni, with_fp16", [
    ("avx2_only", None, True, False),
    ("avx2_only", "avx2", True, False),
    ("skylake", None, True, False),
    ("amd_avx512_bf16", None, False, False),
    ("amd_avx512_bf16", "avx512_core", True, False),           # the cap hides avx512_core_vnni
    ("intel_amx_fp16", None, False, True),
    ("intel_amx_fp16", "avx2_vnni", False, False),             # AVX-VNNI left: a VNNI kernel exists
    ("intel_amx_fp16", "avx512_core_vnni", False, False),
    ("intel_amx_fp16", "avx512_core", True, False),            # hides both VNNI features (and avx2_vnni's bit)
    ("intel_amx_fp16", "avx10_1_512", False, True),
])
def test_cpu_conditions_see_the_features_a_cap_leaves(tmp_path, kind, cap, without_vnni, with_fp16):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(CPU_REGISTRY)
    entries = expectations.load_registry(path)
    assert entries[1].cpu.has == ("avx512_core_fp16",)
    info = cpu.parse_cpuinfo(cpuinfo(kind))
    features = expectations.target_features(cap, info)
    target = f"CPU-f32-{cap}" if cap else "CPU-f32"
    assert (expectations.match(entries, "a.yaml::i8_x", target, "2026.4.1", features) is entries[0]) is without_vnni
    assert (expectations.match(entries, "a.yaml::bf16_x", target, "2026.4.1", features) is entries[1]) is with_fp16


def test_a_cpu_condition_never_holds_where_no_x86_feature_is_known(tmp_path):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(CPU_REGISTRY)
    entries = expectations.load_registry(path)
    arm = cpu.parse_cpuinfo("processor\t: 0\nFeatures\t: fp asimd sve\n")
    assert expectations.target_features(None, arm) is None
    assert expectations.match(entries, "a.yaml::i8_x", "CPU-f32", "2026.4.1", None) is None


@pytest.mark.parametrize("kind, target, cap, i8_registered, bf16_registered", [
    # The shipped registry's two CPU-dependent entries on the four kinds of x86 CPU.
    ("avx2_only", "CPU-f32", None, True, True),
    ("avx2_only", "CPU-f32-sse41", "sse41", True, True),
    ("skylake", "CPU-f32", None, True, False),
    ("amd_avx512_bf16", "CPU-f32", None, False, False),
    ("amd_avx512_bf16", "CPU-f32-avx2", "avx2", True, True),
    ("intel_amx", "CPU-f32", None, False, False),
    ("intel_amx", "CPU-f32-avx2_vnni", "avx2_vnni", False, True),     # AVX-VNNI left, AVX-512 not
    ("intel_amx_fp16", "CPU-f32", None, False, False),
    ("intel_amx_fp16", "CPU-f32-avx512_core", "avx512_core", True, False),
    ("intel_amx_fp16", "CPU-f32-avx2", "avx2", True, True),
])
def test_shipped_cpu_entries_on_each_kind_of_cpu(kind, target, cap, i8_registered, bf16_registered):
    entries = expectations.load_registry(REPO_ROOT / "expected_failures.yaml")
    features = expectations.target_features(cap, cpu.parse_cpuinfo(cpuinfo(kind)))
    i8 = expectations.match(entries, "element_types/group_convolution.yaml::grouped_3x3[element_type=i8]",
                            target, "2026.4.1", features)
    bf16 = expectations.match(entries, "element_types/group_convolution.yaml::grouped_uniform[element_type=bf16]",
                              target, "2026.4.1", features)
    assert (i8 is not None, bf16 is not None) == (i8_registered, bf16_registered)
    assert i8 is None or i8.id == "i8-group-convolution-without-vnni"


MACHINE_REGISTRY = """\
- id: avx2-machine
  case: "x.yaml::*"
  signature: {op: GroupConvolution, primitive: "jit_avx2_f32"}
  openvino: "*"
  cpu: {has: [avx2], lacks: [avx512_core], machine_lacks: [AVX512_CORE]}
  reason: "wrong where the CPU itself has no AVX-512"
- case: "y.yaml::*"
  openvino: "*"
  cpu: {machine_has: [avx10_1_512]}
  reason: "a machine condition alone"
"""


def test_machine_conditions_load(tmp_path):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(MACHINE_REGISTRY)
    by_effective, by_machine = expectations.load_registry(path)
    assert by_effective.cpu == expectations.CpuCondition(has=("avx2",), lacks=("avx512_core",),
                                                         machine_lacks=("avx512_core",))
    assert by_machine.cpu == expectations.CpuCondition(machine_has=("avx512_core_fp16",))
    assert by_effective.cpu.describe() == ("CPU features with avx2, without avx512_core; machine's own CPU "
                                           "(before any ISA cap) without avx512_core")


@pytest.mark.parametrize("kind, cap, registered", [
    ("avx2_only", None, True),
    ("avx2_only", "avx2", True),                   # the cap hides nothing there
    ("amd_avx512_bf16", "avx2", False),            # same effective features, but the CPU itself has AVX-512
    ("skylake", "avx2", False),
    ("skylake", None, False),
])
def test_a_machine_condition_sees_the_cpu_before_its_cap(tmp_path, kind, cap, registered):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(MACHINE_REGISTRY)
    entry = expectations.load_registry(path)[0]
    features = expectations.target_features(cap, cpu.parse_cpuinfo(cpuinfo(kind)))
    target = f"CPU-f32-{cap}" if cap else "CPU-f32"
    by_case = expectations.match([entry], "x.yaml::a", target, "2026.4.1", features)
    finding = expectations.FindingSignature("GroupConvolution", "mismatch", target, "jit_avx2_f32")
    by_signature = expectations.match_signature([entry], finding, "2026.4.1", features)
    assert (by_case is entry, by_signature is entry) == (registered, registered)
    if registered:
        assert "machine's own CPU (before any ISA cap) without avx512_core" in entry.describe(features)
        assert "the machine's own: sse41 avx avx2)" in entry.describe(features)


def test_a_machine_condition_never_holds_without_the_machines_features(tmp_path):
    # Plain effective features (not a TargetFeatures) do not say what the machine has.
    path = tmp_path / "expected_failures.yaml"
    path.write_text(MACHINE_REGISTRY)
    entry = expectations.load_registry(path)[0]
    assert expectations.match([entry], "x.yaml::a", "CPU-f32", "2026.4.1", ("sse41", "avx", "avx2")) is None
    assert entry.cpu.holds(("sse41", "avx", "avx2"), ("sse41", "avx", "avx2"))
    assert not entry.cpu.holds(("sse41", "avx", "avx2"), None)
    assert "the machine's own: not known" in entry.describe(("sse41", "avx", "avx2"))


@pytest.mark.parametrize("kind, cap, kernel_registered", [
    ("avx2_only", None, True),
    ("amd_avx512_bf16", "avx2", False),
    ("intel_amx_fp16", "avx2", False),
])
def test_shipped_entries_of_avx2_kernels_picked_by_cpuid(kind, cap, kernel_registered):
    # An AVX-512 CPU under the avx2 cap runs brgconv_avx2 kernels, right (measured on an AMD Zen 5):
    # those entries need a CPU without AVX-512; the bf16 crash stays registered under the cap.
    entries = expectations.load_registry(REPO_ROOT / "expected_failures.yaml")
    features = expectations.target_features(cap, cpu.parse_cpuinfo(cpuinfo(kind)))
    target = f"CPU-f32-{cap}" if cap else "CPU-f32"

    def registered(case_id):
        return expectations.match(entries, case_id, target, "2026.4.1", features) is not None

    assert registered("fuzz_findings/group_convolution_left_pad_beyond_kernel.yaml::left_pad_beyond_kernel"
                      "[pads_end=2x0]") is kernel_registered
    assert registered("fuzz_findings/group_convolution_f16_runtime_kernel_3d.yaml::f16_runtime_kernel_dilated_3d"
                      ) is kernel_registered
    assert registered("fuzz_findings/group_convolution_bf16_crash.yaml::bf16_grouped_dilated_crash")


SIGNATURE_REGISTRY = """\
- signature:
    op: GroupConvolutionBackpropData
    primitive: "jit_*"
    attributes: {groups: 1, auto_pad: "explicit", output_shape: given}
  target: "CPU-*"
  openvino: "2026.4.*"
  fails: error
  origin: "fuzz campaign seed 1"
  reason: "does not compile"
- case: "x.yaml::*"
  signature: {op: GroupConvolution}
  openvino: "2026.4.*"
  cpu: {lacks: [avx512_core]}
  reason: "wrong"
"""


@pytest.mark.parametrize("finding, features, expected", [
    (dict(op="GroupConvolutionBackpropData", failure="error", target="CPU-f32", primitive="jit_avx2_f32",
          attributes={"groups": "1", "auto_pad": "explicit", "output_shape": "given", "rank": "4"}), None, 0),
    (dict(op="GroupConvolutionBackpropData", failure="mismatch", target="CPU-f32", primitive="jit_avx2_f32",
          attributes={"groups": "1", "auto_pad": "explicit", "output_shape": "given"}), None, None),  # failure kind
    (dict(op="GroupConvolutionBackpropData", failure="error", target="GPU-f16", primitive="jit_avx2_f32",
          attributes={"groups": "1", "auto_pad": "explicit", "output_shape": "given"}), None, None),  # target
    (dict(op="GroupConvolutionBackpropData", failure="error", target="CPU-f32", primitive="ref_any",
          attributes={"groups": "1", "auto_pad": "explicit", "output_shape": "given"}), None, None),  # primitive
    (dict(op="GroupConvolutionBackpropData", failure="error", target="CPU-f32", primitive="jit_avx2_f32",
          attributes={"groups": "1", "auto_pad": "explicit"}), None, None),                       # key missing
    (dict(op="GroupConvolutionBackpropData", failure="error", target="CPU-f32", primitive="jit_avx2_f32",
          attributes={"groups": "2", "auto_pad": "explicit", "output_shape": "given"}), None, None),  # value
    (dict(op="GroupConvolution", failure="mismatch", target="CPU-f32"), ("sse41", "avx", "avx2"), 1),
    (dict(op="GroupConvolution", failure="mismatch", target="CPU-f32"), ("avx2", "avx512_core"), None),  # cpu
])
def test_findings_without_a_case_id_match_by_signature(tmp_path, finding, features, expected):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(SIGNATURE_REGISTRY)
    entries = expectations.load_registry(path)
    assert entries[0].signature.attributes == (("auto_pad", "explicit"), ("groups", "1"), ("output_shape", "given"))
    found = expectations.match_signature(entries, expectations.FindingSignature(**finding), "2026.4.1", features)
    assert found is (None if expected is None else entries[expected])
    # A signature-only entry never matches a case item.
    assert expectations.match(entries, "y.yaml::a", "CPU-f32", "2026.4.1", None) is None


MESSAGE_REGISTRY = """\
- signature:
    op: GroupConvolutionBackpropData
    attributes: {groups: 1}
    message: "error: compile: could not create primitive descriptor for deconvolution*"
  openvino: "*"
  fails: error
  reason: "GROUPS=1 does not compile"
- signature:
    attributes: {dynamic: "yes"}
    message: ["error: compile: Cannot calculate order*", "*dims are undefined*"]
  openvino: "*"
  fails: error
  reason: "dynamic shapes do not compile"
- signature: {message: "*"}
  openvino: "*"
  fails: crashed
  reason: "any crash"
"""


@pytest.mark.parametrize("failure, message, attributes, expected", [
    ("error", "error: compile: could not create primitive descriptor for deconvolution forward propagation primitive",
     {"groups": "1"}, 0),
    # another compile error with the same attributes is not the GROUPS=1 family: a new finding
    ("error", "error: compile: Destination memory is undefined", {"groups": "1"}, None),
    ("error", None, {"groups": "1"}, None),                         # no message class known: no message matched
    ("error", "error: compile: Cannot calculate order from undefined dims or strides", {"dynamic": "yes"}, 1),
    ("error", "error: compile: Can't clone desc if new dims are undefined", {"dynamic": "yes"}, 1),  # 2nd glob
    ("error", "error: compile: Can not clone DnnlBlockedMemoryDesc", {"dynamic": "yes"}, None),
    ("crashed", "crashed: SIGFPE", {}, 2),
])
def test_a_signature_message_tells_error_classes_apart(tmp_path, failure, message, attributes, expected):
    path = tmp_path / "expected_failures.yaml"
    path.write_text(MESSAGE_REGISTRY)
    entries = expectations.load_registry(path)
    assert entries[1].signature.messages == ("error: compile: Cannot calculate order*", "*dims are undefined*")
    finding = expectations.FindingSignature("GroupConvolutionBackpropData", failure, "CPU-f32", None, attributes,
                                            message)
    found = expectations.match_signature(entries, finding, "2026.4.1")
    assert found is (None if expected is None else entries[expected])


def test_a_finding_signature_names_a_known_failure_kind():
    with pytest.raises(ValueError, match="'segfault' is not one of mismatch, error, crashed, hung"):
        expectations.FindingSignature(op="GroupConvolution", failure="segfault", target="CPU-f32")
    assert hash(expectations.FindingSignature("GroupConvolution", "hung", "CPU-f32", attributes={"b": 1, "a": 2}))


def test_the_plugin_matches_cpu_conditions_with_the_machines_features(pytester, monkeypatch):
    # The registry entry holds on AVX-512 CPUs only: on a (pretended) Skylake the broken item is
    # a strict xfail whose reason names the features; on a (pretended) AVX2-only CPU it fails.
    make_suite(pytester, corrupt=True)
    pytester.path.joinpath("expected_failures.yaml").write_text(
        '- case: "conv.yaml::broken_*"\n  openvino: "*"\n  cpu: {has: [avx512_core]}\n  reason: "injected"\n')
    for kind, outcomes in (("skylake", dict(passed=4, xfailed=1)), ("avx2_only", dict(passed=4, failed=1))):
        pytester.path.joinpath("cpuinfo").write_text(cpuinfo(kind))
        monkeypatch.setenv("CONFORMANCE_CPUINFO", str(pytester.path / "cpuinfo"))
        cpu.this_cpu.cache_clear()
        try:
            result = pytester.runpytest("-rx")
        finally:
            cpu.this_cpu.cache_clear()
        result.assert_outcomes(**outcomes)
    monkeypatch.delenv("CONFORMANCE_CPUINFO")


def test_the_plugin_matches_machine_conditions_with_the_machines_own_features(pytester, monkeypatch):
    # Under the avx2 cap both (pretended) CPUs leave sse41 avx avx2; only on the one without AVX-512 of its
    # own does the entry hold. A capped item runs in a worker, unaltered, and passes: held, it is an
    # XPASS(strict) whose reason names the machine's features; not held, a plain pass.
    make_suite(pytester)
    pytester.path.joinpath("expected_failures.yaml").write_text(
        '- case: "conv.yaml::broken_*"\n  openvino: "*"\n'
        '  cpu: {has: [avx2], lacks: [avx512_core], machine_lacks: [avx512_core]}\n  reason: "injected"\n')
    for kind, outcomes in (("avx2_only", dict(passed=4, failed=1)), ("skylake", dict(passed=5))):
        pytester.path.joinpath("cpuinfo").write_text(cpuinfo(kind))
        monkeypatch.setenv("CONFORMANCE_CPUINFO", str(pytester.path / "cpuinfo"))
        cpu.this_cpu.cache_clear()
        try:
            result = pytester.runpytest("--target", "CPU:f32:AVX2")
        finally:
            cpu.this_cpu.cache_clear()
        result.assert_outcomes(**outcomes)
        if kind == "avx2_only":
            result.stdout.fnmatch_lines(["*XPASS(strict)*machine's own CPU (before any ISA cap) without avx512_core*"
                                         "(this target's CPU features: sse41 avx avx2; the machine's own: "
                                         "sse41 avx avx2)*"])
    monkeypatch.delenv("CONFORMANCE_CPUINFO")


FAULT_CASES = """\
op: GroupConvolution
cases:
  - name: segfault_registered_crashed
    data: [1, 2, 5]
    kernel: [2, 1, 1, 3]
  - name: abort_registered_hung
    data: [1, 2, 8]
    kernel: [2, 1, 1, 3]
"""


def test_crashed_and_hung_entries_expect_that_kind_of_worker_failure(pytester, monkeypatch):
    from test_isolation import CONFTEST, FAULTS
    pytester.makefile(".toml", pyproject='[tool.pytest.ini_options]\ntestpaths = ["cases"]\n')
    pytester.mkdir("cases").joinpath("faults.yaml").write_text(FAULT_CASES)
    pytester.makepyfile(injected_faults=FAULTS)
    pytester.makeconftest(CONFTEST)
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(pytester.path), os.environ.get("PYTHONPATH")])))
    pytester.path.joinpath("expected_failures.yaml").write_text(
        '- case: "faults.yaml::segfault_*"\n  openvino: "*"\n  fails: crashed\n  reason: "segfaults"\n'
        '- case: "faults.yaml::abort_*"\n  openvino: "*"\n  fails: hung\n  reason: "hangs"\n')
    result = pytester.runpytest("--isolate", "--item-timeout", "20", "-p", "no:cacheprovider")
    result.assert_outcomes(xfailed=1, failed=1)
    result.stdout.fnmatch_lines(["*abort_registered_hung on CPU-f32: the OpenVINO worker failed otherwise than "
                                 "registered*", "*registered as 'hung', but the worker crashed*"])


def test_the_readme_registry_example_loads(tmp_path):
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    example = text.split("**Expected failures**", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    path = tmp_path / "expected_failures.yaml"
    path.write_text(example)
    by_cpu, by_signature = expectations.load_registry(path)
    assert by_cpu.cpu.lacks == ("avx512_core_vnni", "avx2_vnni") and by_cpu.origin == "found by the suite"
    assert by_signature.case is None and by_signature.signature.attributes == (("groups", "1"),)
