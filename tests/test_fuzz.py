"""The fuzzer (conformance.fuzzing): shrinking, planted deviations, dedup, reproducibility, findings as cases.

A fake runtime stands in for OpenVINO: it is wrong only for one attribute class (some axis
with stride > kernel), so what the campaign finds and how it shrinks is known exactly.
"""
from __future__ import annotations

import dataclasses
import textwrap
from pathlib import Path

import pytest

from conformance import api
from conformance import ops as op_registry
from conformance.fuzzing import campaign, shrink, strategies
from conformance.expectations import FindingSignature, load_registry, match_signature
from conformance.runtime import Target

CPU = Target("CPU", "f32")


def stride_over_kernel_runtime(case, target, steps=None):
    """A fake runtime wrong only when some axis has stride > kernel (everything else passes)."""
    kernel = op_registry.get(case.op).kernel_spatial(case.kernel_shape)
    if any(s > k for s, k in zip(case.strides, kernel)):
        return campaign.RunOutcome("mismatch", "mismatch", "fake_primitive", "f32", "planted")
    return campaign.RunOutcome("pass", primitive="fake_primitive", precision="f32")


def settings(seed=1, cases=40, registry=None, ops=strategies.DEFAULT_OPS, shrink_known=False):
    return campaign.Settings(seed=seed, max_cases=cases, targets=(CPU,), registry=registry, shrink_checks=200,
                             ops=ops, shrink_known=shrink_known)


def signature_of(op, params):
    case, _ = campaign.load_params(op, params)
    outcome = stride_over_kernel_runtime(case, CPU)
    return outcome.failed, tuple(sorted(strategies.attribute_class(op, params).items()))


def test_shrinker_keeps_the_signature_and_reaches_the_class_minimum():
    params = {"batch": 3, "groups": 4, "c_in": 3, "c_out": 2, "spatial": [9, 7], "kernel": [3, 2],
              "strides": [5, 1], "dilations": [2, 1], "pads_begin": [1, 2], "pads_end": [3, 0],
              "auto_pad": "explicit", "element_type": "f32", "kernel_input": "const", "seed": 5}
    op = "GroupConvolution"
    wanted = signature_of(op, params)
    assert wanted[0]
    minimal, checks = shrink.shrink(params, lambda candidate: _valid(op, candidate)
                                    and signature_of(op, candidate) == wanted, max_checks=500)
    assert signature_of(op, minimal) == wanted
    assert checks > 0
    # grouped stays grouped (the class), everything else at its simplest
    assert (minimal["batch"], minimal["groups"], minimal["c_in"], minimal["c_out"]) == (1, 2, 1, 2)
    assert minimal["spatial"] == [1] and minimal["kernel"] == [1] and minimal["strides"] == [2]
    assert minimal["dilations"] == [1] and minimal["pads_begin"] == [0] and minimal["pads_end"] == [0]


def _valid(op, params):
    try:
        case, _ = campaign.load_params(op, params)
    except api.CaseError:
        return False
    return strategies.size_ok(case)


def test_a_planted_deviation_is_found_and_shrunk_to_its_class():
    result = campaign.run_campaign(settings(), stride_over_kernel_runtime)
    assert result.cases == 40 and result.findings
    for finding in result.findings.values():
        assert finding.attributes["stride_gt_kernel"] == "yes"
        assert finding.failure_class == "mismatch" and finding.primitive == "fake_primitive"
        assert finding.shrunk
        params = finding.params
        assert any(s > k for s, k in zip(params["strides"], params["kernel"]))
        # each axis at its simplest for the class: stride > kernel as kernel 1, stride 2; other axes
        # (kept only when another class needs them, e.g. output_padding > 0) stride 1
        assert params["batch"] == 1 and params["c_in"] * params["c_out"] <= 2   # grouped needs one of them 2
        if finding.attributes.get("output_shape_lt_kernel") == "yes":   # the class needs a kernel > output_shape
            assert max(params["kernel"]) <= 2 and min(params["kernel"]) == 1, params
        else:
            assert params["kernel"] == [1] * len(params["spatial"])
        assert set(params["strides"]) <= {1, 2} and set(params["dilations"]) == {1}, params
        assert max(params["spatial"]) <= 2, params
    # passing cases were run too, and never reported
    assert result.statuses["pass"] > 0


def test_dedup_merges_repeats():
    wide = settings(cases=300)   # one op: repeats of a whole attribute-class signature within a few hundred cases
    wide.ops, wide.shrink_checks = ("GroupConvolution",), 0
    result = campaign.run_campaign(wide, stride_over_kernel_runtime)
    hits = sum(finding.hits for finding in result.findings.values())
    assert hits == result.statuses["mismatch"]          # every failing run is in exactly one finding
    assert any(finding.hits > 1 for finding in result.findings.values())
    assert len({finding.key for finding in result.findings.values()}) == len(result.findings)
    data = result.to_json()
    merged = campaign.merge([data, data])
    assert set(merged.findings) == set(result.findings)
    assert sum(finding.hits for finding in merged.findings.values()) == 2 * hits


def test_same_seed_same_findings_other_seed_other_cases():
    first = campaign.run_campaign(settings(seed=7, cases=30), stride_over_kernel_runtime)
    second = campaign.run_campaign(settings(seed=7, cases=30), stride_over_kernel_runtime)
    assert [(f.key, f.params, f.hits) for f in first.findings.values()] == \
        [(f.key, f.params, f.hits) for f in second.findings.values()]
    drawn = [campaign.Campaign(settings(seed=seed)).next_case()[1] for seed in (7, 7, 8)]
    assert drawn[0] == drawn[1] and drawn[0] != drawn[2]


def test_findings_load_as_cases_and_carry_provenance(tmp_path):
    result = campaign.run_campaign(settings(cases=30), stride_over_kernel_runtime)
    paths = campaign.write_findings(result, tmp_path / "findings")
    assert len(paths) == len(result.findings) > 0
    cases, problems = api.validate([tmp_path / "findings"])
    assert problems == [] and len(cases) == len(paths)
    text = paths[0].read_text()
    for words in ("# signature: op=", "raw hits:", "seed 1", "# CPU:", "OpenVINO", "NEW"):
        assert words in text
    assert (tmp_path / "findings" / "summary.json").exists()


def test_a_registry_signature_makes_a_finding_known(tmp_path):
    registry = tmp_path / "expected_failures.yaml"
    registry.write_text(textwrap.dedent("""\
        - signature: {op: GroupConvolution, primitive: "fake_*", attributes: {stride_gt_kernel: "yes"}}
          openvino: "*"
          reason: "the planted deviation"
        """))
    result = campaign.run_campaign(settings(cases=30, registry=registry), stride_over_kernel_runtime)
    ops = {finding.op: finding.known for finding in result.findings.values()}
    assert ops.get("GroupConvolution", "").startswith("expected_failures.yaml:")
    assert ops.get("GroupConvolutionBackpropData", "x") is None   # op differs: new
    assert all(f.known is None for f in result.new_findings())
    # only new findings are shrunk unless asked (the registry's case is a known one's repro)
    assert all(f.shrunk for f in result.new_findings())
    known = [f for f in result.findings.values() if f.known]
    assert known and not any(f.shrunk or f.shrink_checks for f in known)
    assert "NOT minimised (known" in campaign.finding_text(known[0], "2026.4.1", "cpu")
    again = campaign.run_campaign(settings(cases=30, registry=registry, shrink_known=True), stride_over_kernel_runtime)
    assert all(f.shrunk for f in again.findings.values())


@pytest.mark.parametrize("op", list(strategies.GENERATORS))
def test_generated_cases_are_valid_small_and_varied(op):
    import random
    rng = random.Random(3)
    classes = set()
    for _ in range(150):
        params, case = campaign.draw_case(rng, op)
        assert strategies.size_ok(case)
        classes.update(strategies.attribute_class(op, params).items())
    groups = [("groups", "1"), ("groups", "depthwise"), ("groups", "grouped")] if op_registry.get(op).grouped \
        else [("groups", "1")]   # an ungrouped sibling: one group only
    for wanted in groups + [("auto_pad", "valid"), ("auto_pad", "same_lower"), ("stride_gt_kernel", "yes"),
                            ("dynamic", "yes"), ("kernel_input", "parameter"), ("element_type", "i8")]:
        assert wanted in classes, wanted
    if not op_registry.get(op).grouped:
        assert ("groups", "depthwise") not in classes and ("groups", "grouped") not in classes
    if op_registry.get(op).transposed:
        for wanted in [("output_shape", "const"), ("output_shape", "parameter"), ("output_padding", ">0"),
                       ("output_shape_size", "larger"), ("output_shape_size", "smaller")]:
            assert wanted in classes, wanted


def fake_jobs(tmp_path, seed, jobs, max_cases):
    """What ``ov-conformance fuzz --jobs N`` does, on the fake runtime: one campaign per job seed, each
    writing its summary.json to jobs/job-i (a job's command has --job: no finding files), then the
    command's merge of them."""
    from argparse import Namespace
    from conformance.fuzzing import cli as fuzz_cli
    args = Namespace(seed=seed, jobs=jobs, max_cases=max_cases, time=None, targets=None, ops=None,
                     expected_failures="expected_failures.yaml", item_timeout=60.0, shrink_checks=200,
                     batch_size=None)
    job_dirs, results = [], []
    for index, job_seed in enumerate(fuzz_cli.job_seeds(seed, jobs)):
        command = fuzz_cli._job_command(args, index, tmp_path / f"job-{index}")
        assert command[command.index("--seed") + 1] == str(job_seed) and "--job" in command
        per_job = int(command[command.index("--max-cases") + 1])
        results.append(campaign.run_campaign(settings(seed=job_seed, cases=per_job, ops=("Convolution",)),
                                             stride_over_kernel_runtime))
        job_dirs.append(tmp_path / f"job-{index}")
        campaign.write_summary(results[-1], job_dirs[-1])
    merged, missing = fuzz_cli.merge_job_outputs(job_dirs)
    assert missing == []
    return merged, results


def test_jobs_2_merges_the_jobs_dedups_across_them_and_repeats_per_seed(tmp_path, monkeypatch):
    # one coarse attribute class, so both jobs surely hit the same signatures
    monkeypatch.setattr(op_registry.get("Convolution"), "fuzz_classes", lambda params: {
        "stride_gt_kernel": "yes" if any(s > k for s, k in zip(params["strides"], params["kernel"])) else "no",
        "rank": str(len(params["spatial"]))})
    merged, jobs = fake_jobs(tmp_path / "first", seed=4, jobs=2, max_cases=41)
    assert [job.seed for job in jobs] == [4000, 4001] and [job.cases for job in jobs] == [21, 21]
    assert merged.cases == 42 and merged.runs == sum(job.runs for job in jobs)
    assert merged.statuses == jobs[0].statuses + jobs[1].statuses
    # one finding per signature over both jobs; a signature both jobs hit has both jobs' hits,
    # and the simpler of the two minimal cases
    keys = [{json_key(f) for f in job.findings.values()} for job in jobs]
    both = keys[0] & keys[1]
    assert both, "the planted class is hit by both jobs"
    assert {json_key(f) for f in merged.findings.values()} == keys[0] | keys[1]
    assert len(merged.findings) == len(keys[0] | keys[1])
    for finding in merged.findings.values():
        hits = [job_finding.hits for job in jobs for job_finding in job.findings.values()
                if json_key(job_finding) == json_key(finding)]
        assert finding.hits == sum(hits)
        if json_key(finding) in both:
            sizes = [shrink.size_key(job_finding.params) for job in jobs for job_finding in job.findings.values()
                     if json_key(job_finding) == json_key(finding)]
            assert shrink.size_key(finding.params) == min(sizes)
    # the same seed and --max-cases: the same merged findings; another seed: other job seeds
    again, _ = fake_jobs(tmp_path / "again", seed=4, jobs=2, max_cases=41)
    assert [(json_key(f), f.params, f.hits) for f in merged.findings.values()] == \
        [(json_key(f), f.params, f.hits) for f in again.findings.values()]
    _, other = fake_jobs(tmp_path / "other", seed=5, jobs=2, max_cases=41)
    assert [job.seed for job in other] == [5000, 5001]


def json_key(finding):
    """A finding's dedup key as it survives summary.json (lists, not tuples)."""
    import json
    return json.dumps(finding.key)


def test_every_op_draws_its_own_fuzz_cases_deterministically():
    """Each op module holds its campaign generator (``Op.fuzz_fields``) and classes (``Op.fuzz_classes``)."""
    import random
    for name in op_registry.names():
        op = op_registry.get(name)
        first, second = ([op.fuzz_fields(rng, 64) for _ in range(20)] for rng in (random.Random(11),
                                                                                   random.Random(11)))
        assert first == second and first[0] != first[1]
        assert all(params["groups"] == 1 for params in first) or op.grouped
        assert ("output_padding" in first[0]) == op.transposed
        assert set(op.fuzz_classes(first[0])) >= {"groups", "auto_pad", "element_type", "dynamic"}


@pytest.mark.parametrize("element_type, limit", [("i8", 14), ("u8", 28), ("bf16", 28)])
def test_narrow_element_types_get_kernels_the_fill_need_not_thin(element_type, limit):
    """i8 / u8 / bf16: at most as many taps per output channel as can all be nonzero and still sum
    exactly (the fill would zero the rest, and outputs reached by zeroed taps only are 0)."""
    from math import prod
    from conformance.ops import fuzz
    params = {"c_in": 33, "kernel": [7, 5], "element_type": element_type}
    fuzz.clamp_taps(params)
    assert params["c_in"] * prod(params["kernel"]) <= limit and min(params["kernel"]) >= 1
    unchanged = {"c_in": 33, "kernel": [7, 5], "element_type": "f32"}
    fuzz.clamp_taps(unchanged)
    assert unchanged == {"c_in": 33, "kernel": [7, 5], "element_type": "f32"}


def test_campaign_cases_are_trustworthy():
    """What the campaign draws passes the trust check (api.trust_problem: reached outputs, not mostly
    zeros, integer results in range): before the generators knew, 7% of seed 6000's cases did not."""
    fuzzer = campaign.Campaign(settings(seed=6000))
    problems = []
    types = set()
    for _ in range(80):
        op, params, case = fuzzer.next_case()
        types.add(case.element_type)
        problem = api.trust_problem(case, api.prepare(case))
        if problem:
            problems.append((params, problem))
    assert problems == []
    assert {"i8", "bf16"} & types   # the narrow types were drawn


def test_pytest_fuzz_option_runs_a_campaign_item_and_writes_findings_beside_the_report(pytester):
    """``pytest --fuzz N``: one item, on OpenVINO; findings (if any) beside the report."""
    from pathlib import Path
    root = Path(__file__).resolve().parents[1]
    pytester.makeini(f"[pytest]\nconformance_cases = {root / 'cases'}\n")
    report = pytester.path / "out" / "conformance.json"
    result = pytester.runpytest_subprocess(
        "--fuzz", "2", "--fuzz-seed", "3", "--conformance-report", str(report),
        "--expected-failures", str(root / "expected_failures.yaml"), "-p", "no:cacheprovider")
    outcomes = result.parseoutcomes()
    assert outcomes.get("passed", 0) + outcomes.get("failed", 0) == 1, result.stdout.str()
    assert (pytester.path / "out" / "fuzz-findings" / "summary.json").exists()


BPD = "GroupConvolutionBackpropData"
AVX2_ONLY = ("sse41", "avx", "avx2")
GROUPS_1_MESSAGE = "error: compile: could not create primitive descriptor for deconvolution forward propagation primitive"


def groups_1_compile_error(message):
    """A fake runtime where BackpropData with GROUPS = 1 fails to compile with ``message`` (OpenVINO's
    words, normalised by ``releases.failure_signature``); everything else passes."""
    from conformance.releases import failure_signature

    def runner(case, target, steps=None):
        if case.op == BPD and case.kernel_shape[0] == 1:
            return campaign.RunOutcome("error", failure_signature("error", message), message=message)
        return campaign.RunOutcome("pass", primitive="fake_primitive", precision="f32")
    return runner


@pytest.mark.parametrize("message, known", [
    ("compile: could not create a primitive descriptor for a deconvolution forward propagation primitive", True),
    ("compile: Unexpected: Cannot calculate order from undefined dims or strides at dims.cpp:12", False),
])
def test_only_the_registered_message_class_makes_a_groups_1_error_known(message, known):
    """The GROUPS=1 BackpropData entry matches its own compile error; another error class on the
    same attributes is a new finding, not attributed to it."""
    from pathlib import Path
    registry = Path(__file__).resolve().parents[1] / "expected_failures.yaml"
    fuzzer = campaign.Campaign(campaign.Settings(seed=2, max_cases=40, targets=(CPU,), registry=registry,
                                                 ops=(BPD,), shrink_checks=0), groups_1_compile_error(message))
    fuzzer.result.openvino_version = "2026.4.1"   # the registry entry's range, whatever is installed
    result = fuzzer.run()
    errors = [finding for finding in result.findings.values() if finding.failure == "error"]
    assert errors and all(finding.attributes["groups"] == "1" for finding in errors)
    for finding in errors:
        assert (finding.failure_class == GROUPS_1_MESSAGE) is known
        assert (finding.known is not None) is known, (finding.failure_class, finding.known)


@pytest.mark.parametrize("finding, features, entry_id_or_case", [
    (FindingSignature(BPD, "error", "CPU-f32", None, {"groups": "1", "auto_pad": "valid"}, GROUPS_1_MESSAGE),
     AVX2_ONLY, "group_convolution_backprop_data/groups.yaml::single_group[[]*"),
    (FindingSignature(BPD, "mismatch", "CPU-f32", "jit_gemm_f32", {"output_shape": "const", "auto_pad": "valid",
                                                                    "output_shape_size": "smaller"}), AVX2_ONLY,
     "group_convolution_backprop_data/output_shape.yaml::*_begin_crop*auto_pad=valid*"),
    (FindingSignature(BPD, "mismatch", "CPU-f32", "jit_gemm_f32", {"output_shape": "parameter",
                                                                    "auto_pad": "same_lower",
                                                                    "output_shape_size": "larger"}), AVX2_ONLY,
     "spec_notes/output_shape_beyond_full.yaml::beyond_full_by_[23][[]*"),
    (FindingSignature(BPD, "error", "CPU-f32", None, {"output_shape": "parameter", "dynamic": "no"},
                      "error: compile: Destination memory is undefined"), AVX2_ONLY,
     "runtime_inputs/group_convolution_backprop_data.yaml::output_shape_parameter[[]auto_pad=*"),
    (FindingSignature(BPD, "error", "CPU-f32", None, {"output_shape": "const", "dynamic": "yes", "groups": "1",
                                                      "output_shape_lt_kernel": "yes"},
                      "error: compile: Can not clone DnnlBlockedMemoryDesc with dims: {N, N, N, N, N}"), AVX2_ONLY,
     "fuzz-backprop-dynamic-output-shape-below-kernel-3d"),
    (FindingSignature(BPD, "error", "CPU-f32", None, {"output_shape": "const", "dynamic": "yes", "groups": "depthwise",
                                                      "output_shape_lt_kernel": "yes"}, GROUPS_1_MESSAGE), AVX2_ONLY,
     "fuzz-backprop-dynamic-output-shape-below-kernel"),   # seed 7: the GROUPS=1 words, another cause
    (FindingSignature(BPD, "crashed", "CPU-bf16", None, {"element_type": "bf16", "groups": "depthwise"},
                      "crashed: SIGSEGV"), AVX2_ONLY, "fuzz-backprop-bf16-depthwise-crash"),
    (FindingSignature("GroupConvolution", "mismatch", "CPU-f32", "jit_avx2_i8", {"element_type": "i8"}),
     AVX2_ONLY, "i8-group-convolution-without-vnni"),
    (FindingSignature("GroupConvolution", "mismatch", "CPU-f32", "jit_avx2_f32",
                      {"element_type": "bf16"}), AVX2_ONLY, "bf16-outputs-truncated-without-avx512"),
])
def test_the_known_families_match_the_registry_by_signature(finding, features, entry_id_or_case):
    from pathlib import Path
    entries = load_registry(Path(__file__).resolve().parents[1] / "expected_failures.yaml")
    entry = match_signature(entries, finding, "2026.4.1", features)
    assert entry is not None and entry_id_or_case in (entry.id, entry.case)


def test_known_families_need_their_conditions():
    """No signature matches a passing-looking class: i8 with VNNI, bf16 with AVX-512, GROUPS 2 errors."""
    from pathlib import Path
    entries = load_registry(Path(__file__).resolve().parents[1] / "expected_failures.yaml")
    i8 = FindingSignature("GroupConvolution", "mismatch", "CPU-f32", "jit_avx2_i8", {"element_type": "i8"})
    assert match_signature(entries, i8, "2026.4.1", AVX2_ONLY + ("avx512_core", "avx512_core_vnni")) is None
    bf16 = FindingSignature(BPD, "mismatch", "CPU-f32", "x", {"element_type": "bf16"})
    assert match_signature(entries, bf16, "2026.4.1", AVX2_ONLY + ("avx512_core",)) is None
    grouped = FindingSignature(BPD, "error", "CPU-f32", None, {"groups": "grouped", "output_shape": "none",
                                                                "dynamic": "no"})
    assert match_signature(entries, grouped, "2026.4.1", AVX2_ONLY) is None


def test_the_fuzz_command_runs_a_small_campaign_and_writes_its_summary(tmp_path, capsys):
    """``ov-conformance fuzz`` end to end on OpenVINO (two cases): a rate line and a summary."""
    import json
    from conformance import cli
    out = tmp_path / "findings"
    code = cli.main(["fuzz", "--seed", "1", "--max-cases", "2", "--op", "GroupConvolution", "--out", str(out)])
    assert code in (0, 1)   # 1: a finding the registry does not know (then it is written as a case file)
    assert "cases/s" in capsys.readouterr().out
    summary = json.loads((out / "summary.json").read_text())
    assert summary


def test_the_fuzz_command_names_a_registry_it_cannot_use_and_runs_no_case(tmp_path, capsys):
    """A missing ``--expected-failures`` file, or one that does not load, is exit 2 and one line naming
    the file (and the line and field), never a traceback from inside a job."""
    from conformance import cli
    bad = tmp_path / "registry.yaml"
    bad.write_text("- id: x\n  bogus: 1\n")
    out = tmp_path / "findings"
    for path, said in ((tmp_path / "absent.yaml", "absent.yaml: no such file"), (bad, "registry.yaml:2: bogus")):
        code = cli.main(["fuzz", "--max-cases", "2", "--jobs", "2", "--expected-failures", str(path), "--out", str(out)])
        assert code == 2
        error = capsys.readouterr().err
        assert said in error and "Traceback" not in error
    assert not out.exists()


def test_jobs_auto_is_two_per_core_and_a_count_must_be_positive():
    import argparse
    import os

    from conformance.fuzzing.cli import jobs_count
    assert jobs_count("auto") == jobs_count("AUTO") == 2 * len(os.sched_getaffinity(0))
    assert jobs_count("3") == 3
    for bad in ("0", "-1", "two"):
        with pytest.raises(argparse.ArgumentTypeError, match="a number of jobs >= 1, or auto"):
            jobs_count(bad)


def test_without_the_default_registry_the_campaign_says_so_and_counts_findings_as_new(tmp_path, monkeypatch, capsys):
    """Run outside the project (no ./expected_failures.yaml): the campaign runs without a registry and says so."""
    from conformance import cli
    from conformance.fuzzing import cli as fuzz_cli
    monkeypatch.chdir(tmp_path)
    args = cli.build_parser().parse_args(["fuzz"])
    assert fuzz_cli.registry_problem(args) is None and args.expected_failures is None
    assert "no registry, every finding counts as new" in capsys.readouterr().err
    assert "--expected-failures" not in fuzz_cli._job_arguments(args, 0, tmp_path)


def test_jobs_2_forks_its_jobs_and_merges_what_they_wrote(tmp_path):
    """``ov-conformance fuzz --jobs 2`` end to end on OpenVINO: the parent imports what the jobs need
    and forks them; each job writes its log and summary.json; the parent's summary and finding files
    are the merge of the jobs' summaries; no process is left behind."""
    import json
    import os
    import subprocess
    import sys

    from conformance.fuzzing import cli as fuzz_cli
    out = tmp_path / "findings"
    done = subprocess.run([sys.executable, "-m", "conformance.cli", "fuzz", "--jobs", "2", "--max-cases", "6",
                           "--seed", "1", "--out", str(out)], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [
                              str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")]))})
    assert done.returncode in (0, 1), done.stderr
    assert "6 cases in" in done.stdout
    job_dirs = [out / "jobs" / f"job-{index}" for index in range(2)]
    for job_dir, seed in zip(job_dirs, (1000, 1001)):
        assert f"seed {seed}" in (job_dir / "log.txt").read_text() and "3 cases in" in (job_dir / "log.txt").read_text()
    merged, missing = fuzz_cli.merge_job_outputs(job_dirs)
    assert missing == []
    summary = json.loads((out / "summary.json").read_text())
    assert summary["cases"] == merged.cases == 6 and summary["statuses"] == dict(merged.statuses)
    assert [(f["failure_class"], f["hits"], f["params"]) for f in summary["findings"]] == \
        [(f.failure_class, f.hits, f.params) for f in merged.findings.values()]
    assert sorted(path.name for path in out.glob("*.yaml")) == sorted(f"{f.slug()}.yaml" for f in merged.findings.values())


def test_a_forked_job_that_fails_says_why_in_its_log_and_writes_no_summary(tmp_path):
    import subprocess
    import sys
    script = (f"from pathlib import Path; from conformance.fuzzing import cli; import time\n"
              f"job = cli._fork_job(['fuzz', '--max-cases', 'three', '--out', {str(tmp_path)!r}, '--job'], "
              f"Path({str(tmp_path / 'log.txt')!r}))\n"
              f"while job.poll() is None: time.sleep(0.01)\n"
              f"print(job.returncode)\n")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=Path(__file__).resolve().parent.parent)
    assert done.stdout.strip() not in ("", "0"), done.stderr
    assert "invalid int value: 'three'" in (tmp_path / "log.txt").read_text()
    assert not (tmp_path / "summary.json").exists()


# ---- batched campaigns (batch.run_batch): same findings as one model per case --------------------------------

def counting_batch_runner(calls, wrong_in_batch=lambda case: False):
    """A fake batch runner: each member as ``stride_over_kernel_runtime`` says, marked as batched; a
    member for which ``wrong_in_batch(case)`` holds fails inside the batch whatever it does alone."""
    def run(members, target):
        calls.append(len(members))
        outcomes = []
        for case, steps in members:
            outcome = stride_over_kernel_runtime(case, target, steps)
            if wrong_in_batch(case):
                outcome = campaign.RunOutcome("mismatch", "mismatch", "fake_primitive", "f32", "planted in batch")
            outcomes.append(dataclasses.replace(outcome, batch_size=len(members)))
        return outcomes
    return run


def batched(seed=1, cases=40, batch_size=16, registry=None):
    chosen = settings(seed=seed, cases=cases, registry=registry)
    chosen.batch_size = batch_size
    return chosen


def test_batched_and_per_case_campaigns_give_the_same_findings():
    """The planted deviation is found inside batches, shrunk per case, and the findings (keys,
    minimal parameters, hits) and statuses are those of the one-model-per-case campaign."""
    calls = []
    in_batches = campaign.run_campaign(batched(seed=5), stride_over_kernel_runtime, counting_batch_runner(calls))
    per_case = campaign.run_campaign(batched(seed=5, batch_size=1), stride_over_kernel_runtime,
                                     counting_batch_runner(unused := []))
    assert calls and max(calls) > 1 and not unused        # batches ran; --batch-size 1 never batches
    assert in_batches.findings and in_batches.statuses == per_case.statuses
    assert [(f.key, f.params, f.hits, f.shrunk, f.shrink_checks) for f in in_batches.findings.values()] == \
        [(f.key, f.params, f.hits, f.shrunk, f.shrink_checks) for f in per_case.findings.values()]
    for finding in in_batches.findings.values():
        assert finding.attributes["stride_gt_kernel"] == "yes" and finding.shrunk and not finding.batch_only


def test_a_case_failing_only_inside_a_batch_is_a_finding_of_its_own_kind(tmp_path):
    """Alone it passes (the per-case runner), in a batch it fails: reported as batch-only with the
    members of its batch, never matched by the registry, not shrunk, both IRs written."""
    def depthwise(case):   # grouped ops only (the default): kernel [GROUPS, 1, 1, ...]
        return case.kernel_shape[0] > 1 and case.kernel_shape[1] == case.kernel_shape[2] == 1 \
            and not any(s > k for s, k in zip(case.strides, case.kernel_shape[3:]))
    registry = tmp_path / "expected_failures.yaml"
    registry.write_text("".join(f'- signature: {{op: {op}, attributes: {{groups: depthwise}}}}\n  openvino: "*"\n'
                                f'  reason: matches the class, yet a batch-only failure is not this entry\n'
                                for op in strategies.DEFAULT_OPS))
    result = campaign.run_campaign(batched(cases=60, registry=registry), stride_over_kernel_runtime,
                                   counting_batch_runner([], depthwise))
    only = [finding for finding in result.findings.values() if finding.batch_only]
    assert only and result.statuses[campaign.BATCH_ONLY] == sum(finding.hits for finding in only)
    for finding in only:
        assert finding.failure_class == "fails only inside a batch: mismatch" and finding.failure == "mismatch"
        assert finding.attributes["groups"] == "depthwise" and finding.known is None and not finding.shrunk
        op, params = finding.batch_members[finding.batch_position]
        assert (op, params) == (finding.op, finding.params) and len(finding.batch_members) > 1
    paths = campaign.write_findings(result, tmp_path / "findings")
    cases, problems = api.validate([tmp_path / "findings"])
    assert problems == [] and len(cases) == len(paths)
    directory = tmp_path / "findings" / only[0].slug()
    alone, batch = (directory / "case.xml").read_text(), (directory / "batch.xml").read_text()
    assert batch.count('type="Result"') == len(only[0].batch_members) and alone.count('type="Result"') == 1
    assert "fails only inside a batch" in (tmp_path / "findings" / f"{only[0].slug()}.yaml").read_text()


def test_a_real_small_batched_campaign_matches_the_per_case_one():
    """On OpenVINO: a few cases batched (isolated worker) end as they do one model per case."""
    from conformance.targets import parse_target
    results = []
    for batch_size in (8, 1):
        chosen = campaign.Settings(seed=2, max_cases=8, targets=(parse_target("CPU:f32"),), shrink_checks=0,
                                   ops=("GroupConvolution",), batch_size=batch_size)
        results.append(campaign.run_campaign(chosen))
    in_batches, per_case = results
    assert in_batches.cases == per_case.cases == 8
    assert in_batches.statuses == per_case.statuses
    assert in_batches.primitives == per_case.primitives
    assert set(in_batches.findings) == set(per_case.findings)


def test_a_case_loads_from_its_document_as_from_its_yaml_text():
    """``load_case`` (no YAML round trip) gives the case ``load_params`` gives (its source line aside),
    and refuses what that refuses with the same message."""
    import random
    rng = random.Random(4)
    refused = 0
    for _ in range(300):
        op = rng.choice(list(strategies.GENERATORS))
        params = strategies.GENERATORS[op](rng)
        try:
            from_text = campaign.load_params(op, params)[0]
        except api.CaseError as error:
            refused += 1
            with pytest.raises(api.CaseError) as again:
                campaign.load_case(op, params)
            assert again.value.message == error.message
            continue
        from_document = campaign.load_case(op, params)
        assert dataclasses.replace(from_text, source=from_document.source) == from_document
    assert refused   # the generators draw some invalid combinations: both refuse them


def test_a_documents_text_is_the_same_with_libyaml_as_with_pyyamls_own_emitter():
    """``document_text`` emits with libyaml when PyYAML has it (4x faster): the same text, byte for
    byte, as PyYAML's pure-Python emitter, over documents of every op's draws."""
    import random

    import yaml
    rng = random.Random(5)
    for index in range(500):
        op = rng.choice(list(strategies.GENERATORS))
        params = strategies.GENERATORS[op](rng)
        name = f"case_{index}"
        expected = yaml.dump(strategies.document(op, params, name), Dumper=yaml.SafeDumper, sort_keys=False,
                             default_flow_style=None)
        assert campaign.document_text(op, params, name) == expected


def depthwise_rejected_runtime(case, target, steps=None):
    """A fake runtime that rejects depthwise cases (a compile error) and runs the rest as
    ``stride_over_kernel_runtime`` does."""
    if case.kernel_shape[0] > 1 and case.kernel_shape[1] == case.kernel_shape[2] == 1:
        return campaign.RunOutcome("error", "error: compile: planted", message="planted rejection")
    return stride_over_kernel_runtime(case, target, steps)


def test_a_registered_rejection_runs_alone_from_the_first_case_and_changes_no_outcome(tmp_path):
    """A case whose op and attribute classes a ``fails: error`` entry covers runs alone from the start
    (it would only cost its batch a bisection), with the statuses and findings of the per-case campaign;
    a ``fails: crashed`` entry's broad signature does not send cases alone."""
    registry = tmp_path / "expected_failures.yaml"
    registry.write_text("".join(
        f'- signature: {{op: {op}, attributes: {{groups: depthwise}}}}\n  openvino: "*"\n  fails: error\n'
        f'  reason: the planted rejection\n'
        f'- signature: {{op: {op}, attributes: {{stride_gt_kernel: "yes"}}}}\n  openvino: "*"\n  fails: crashed\n'
        f'  reason: a broad crash signature\n' for op in strategies.DEFAULT_OPS))
    batched_members = []

    def batch_runner(members, target):
        batched_members.extend(case for case, _ in members)
        return [dataclasses.replace(depthwise_rejected_runtime(case, target, steps), batch_size=len(members))
                for case, steps in members]

    fuzzer = campaign.Campaign(batched(cases=60, registry=registry), depthwise_rejected_runtime, batch_runner)
    in_batches = fuzzer.run()
    per_case = campaign.run_campaign(batched(cases=60, registry=registry, batch_size=1), depthwise_rejected_runtime)
    assert in_batches.statuses["error"] > 0 and in_batches.statuses == per_case.statuses
    assert [(f.key, f.params, f.hits) for f in in_batches.findings.values()] == \
        [(f.key, f.params, f.hits) for f in per_case.findings.values()]
    assert batched_members and not any(depthwise_rejected_runtime(case, CPU).status == "error"
                                       for case in batched_members)
    assert any(any(s > k for s, k in zip(case.strides, op_registry.get(case.op).kernel_spatial(case.kernel_shape)))
               for case in batched_members)   # the crash entry sent nothing alone


def test_the_oracle_made_to_draw_a_case_is_the_one_it_runs_with():
    """A case with ReLU/Clamp post-ops needs its oracle to be drawn (``post_ops_keep_the_op_visible``):
    the campaign keeps those steps for its run, once, and they are what ``api.prepare`` makes."""
    import numpy as np
    fuzzer = campaign.Campaign(settings(seed=3))
    for _ in range(400):
        op, params, case = fuzzer.next_case()
        if strategies.needs_the_oracle_to_draw(case):
            break
    else:
        pytest.fail("no case with a ReLU or Clamp in 400 draws")
    kept = fuzzer._prepare(case)
    assert kept is not None and fuzzer._prepare(case) is not kept   # taken once; then made anew
    for made, fresh in zip(kept, api.prepare(case)):
        assert np.array_equal(made.inputs.data, fresh.inputs.data)
        assert np.array_equal(made.reference.output, fresh.reference.output)


def test_a_job_of_the_fuzz_command_writes_only_its_summary(tmp_path, capsys):
    """A job of ``--jobs N`` (``--job``) writes summary.json alone: the parent writes the finding files."""
    import json
    from conformance import cli
    out = tmp_path / "job-0"
    code = cli.main(["fuzz", "--job", "--seed", "5", "--max-cases", "2", "--op", "GroupConvolution", "--out", str(out)])
    assert code in (0, 1) and "cases/s" in capsys.readouterr().out
    assert [path.name for path in out.iterdir()] == ["summary.json"]
    assert json.loads((out / "summary.json").read_text())["cases"] == 2


def test_finding_texts_made_early_write_the_same_files_and_only_for_unchanged_findings(tmp_path):
    """``--jobs N`` makes a finished job's finding texts while another job runs: written with them,
    the files are byte for byte what ``write_findings`` makes alone, and a finding that changed since
    (more hits after the merge) gets a new text."""
    result = campaign.run_campaign(settings(seed=3, cases=30), stride_over_kernel_runtime)
    assert result.findings
    texts = campaign.finding_texts(result)
    changed = next(iter(result.findings.values()))
    changed.hits += 5
    campaign.write_findings(result, tmp_path / "early", texts)
    campaign.write_findings(result, tmp_path / "late")
    early = sorted(path.name for path in (tmp_path / "early").iterdir())
    assert early == sorted(path.name for path in (tmp_path / "late").iterdir())
    for name in early:
        assert (tmp_path / "early" / name).read_text() == (tmp_path / "late" / name).read_text()
    assert f"raw hits: {changed.hits} " in (tmp_path / "early" / f"{changed.slug()}.yaml").read_text()
