"""From a failing case to what a plugin developer attaches to an upstream bug report.

``ov-conformance report CASE_ID -o DIR`` writes into ``DIR``:

* ``issue.md``: a Markdown issue body: title, what the spec says against what the CPU gives
  (the smallest differing elements), OpenVINO version (and first bad / last good release when
  ``--releases`` bisects), CPU model and ISA flags, target and primitive that ran, which other
  ISA caps pass or fail, the reproduce commands and the case YAML;
* ``bundle/``: the repro bundle (``conformance.repro``): minimal IR, every input, expected output
  and tolerance bound, a standalone ``reproduce.py`` needing only openvino and numpy;
* ``onednn_verbose.txt``: the oneDNN verbose lines of the failing run (``ONEDNN_VERBOSE=all``),
  and ``benchdnn.txt``: a benchdnn reproducer (``--conv``/``--deconv`` with the problem
  descriptor, e.g. ``g2mb1_ic4oc4_iw5ow5kw3sw1dw0pw1``), so the report reaches oneDNN people too.

The benchdnn descriptor is built from the case (the spec's effective pads): it exists even when
OpenVINO failed to create the primitive, where the verbose log has no problem descriptor.
"""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import api, cpu, ops, repro
from .case import Case
from .runtime import RuntimeRejected, Target, TargetUnavailable, openvino_version
from .worker import WorkerFailed

_AXES = {1: ("w",), 2: ("h", "w"), 3: ("d", "h", "w")}
OTHER_CAPS = ("avx2", "sse41")
SHOWN_ELEMENTS = 8


@dataclass
class RunStatus:
    """How one run of the case ended: passed, mismatch, error, crashed or hung, with the details."""

    target_id: str
    status: str
    message: str = ""
    primitive: str | None = None
    precision: str | None = None
    outcome: api.Outcome | None = None
    ir: object | None = None

    @property
    def failed(self) -> bool:
        return self.status != "passed"


def run_case(case: Case, target: Target, ir_dir: Path, steps, timeout: float = 120.0,
             isolate: bool = True) -> RunStatus:
    """``api.check`` (in a worker process unless ``isolate`` is off), its ending turned into a
    ``RunStatus`` (never raises for OpenVINO)."""
    try:
        outcome = api.check(case, target, ir_dir, steps=steps, isolate=isolate, timeout=timeout)
    except TargetUnavailable as reason:
        return RunStatus(target.id, "unavailable", str(reason))
    except RuntimeRejected as error:
        return RunStatus(target.id, "error", str(error), ir=api.render(case, steps[0].inputs, ir_dir))
    except WorkerFailed as failed:
        return RunStatus(target.id, failed.failure.status, failed.failure.describe(),
                         ir=api.render(case, steps[0].inputs, ir_dir))
    run = outcome.run
    status = "passed" if outcome.verdict.passed else "mismatch"
    return RunStatus(target.id, status, "" if outcome.verdict.passed else outcome.describe(),
                     run.primitive_type, run.compute_precision, outcome, outcome.ir)


def benchdnn_descriptor(case: Case) -> str:
    """oneDNN benchdnn's problem descriptor of the case, as the spec defines the computation.

    ``g`` groups, ``mb`` batch, ``ic``/``oc`` total channels, per axis ``i``/``o`` sizes
    (for deconvolution ``i`` is the small input, ``o`` the output), ``k`` kernel, ``s`` stride,
    ``d`` dilation minus one (benchdnn's convention), ``p`` the effective pads_begin (benchdnn
    derives the end padding from the sizes).
    """
    geometry = case.geometry()
    kernel_spatial = ops.get(case.op).kernel_spatial(case.kernel_shape)
    rank = len(case.data_shape) - 2
    parts = [f"g{geometry.groups}mb{case.data_shape[0]}",
             f"ic{case.data_shape[1]}oc{geometry.output_shape[1]}"]
    for axis, name in enumerate(_AXES[rank]):
        parts.append(f"i{name}{case.data_shape[2 + axis]}o{name}{geometry.output_shape[2 + axis]}"
                     f"k{name}{kernel_spatial[axis]}s{name}{case.strides[axis]}"
                     f"d{name}{case.dilations[axis] - 1}p{name}{geometry.pads_begin[axis]}")
    return "_".join(parts)


def benchdnn_command(case: Case, precision: str = "f32") -> str:
    """A benchdnn line reproducing the op's computation (forward inference, plain layouts): oneDNN's
    (grouped) convolution, or its deconvolution for the transposed ops."""
    driver = "deconv" if ops.get(case.op).transposed else "conv"
    data_type = {"f32": "f32", "bf16": "bf16", "f16": "f16"}.get(precision, "f32")
    return (f"./benchdnn --{driver} --dir=FWD_I --dt={data_type}:{data_type}:{data_type} --alg=direct "
            f"{benchdnn_descriptor(case)}")


def onednn_verbose(bundle: Path, target: Target, timeout: float = 120.0) -> list[str]:
    """The oneDNN verbose lines of the bundle's reproduce.py (``ONEDNN_VERBOSE=all``): what oneDNN
    created, dispatched, refused or executed for the op (info lines left out)."""
    environment = {**os.environ, **repro.kernel_environment(target), "ONEDNN_VERBOSE": "all"}
    try:
        completed = subprocess.run([sys.executable, str(bundle / "reproduce.py")], env=environment,
                                   capture_output=True, text=True, timeout=timeout)
        text = completed.stdout + completed.stderr
    except subprocess.TimeoutExpired as expired:
        text = (expired.stdout or "") + (expired.stderr or "") if isinstance(expired.stdout, str) else ""
    lines = [line for line in text.splitlines()
             if line.startswith("onednn_verbose") and ",info," not in line
             and ("convolution" in line or "create:check" in line)]
    # What ran (exec) and why creation failed (create:check) first; the dispatcher's skips after.
    return sorted(lines, key=lambda line: (",exec," not in line, "create:check" not in line))


def differing_elements(expected: np.ndarray, actual: np.ndarray, bound: np.ndarray,
                       count: int = SHOWN_ELEMENTS) -> list[tuple[tuple[int, ...], float, float, float]]:
    """The first ``count`` elements (in C order) outside the bound: (index, expected, actual, allowed)."""
    if expected.shape != actual.shape:
        return []
    outside = np.argwhere(~(np.abs(actual.astype(np.float64) - expected) <= bound))[:count]
    return [(tuple(int(i) for i in index), float(expected[tuple(index)]), float(actual[tuple(index)]),
             float(bound[tuple(index)])) for index in outside]


@dataclass
class UpstreamReport:
    """What ``write`` needs beyond the case: the main run, other caps, the bisection, the verbose log."""

    case: Case
    target: Target
    main: RunStatus
    bundle: Path
    others: list[RunStatus] = field(default_factory=list)
    bisection: dict | None = None
    verbose: list[str] = field(default_factory=list)


def issue_markdown(report: UpstreamReport) -> str:
    """The Markdown issue body."""
    case, main = report.case, report.main
    cpu_info = cpu.this_cpu()
    kind, verb = {"mismatch": ("wrong output", "gives a wrong output"),
                  "error": ("compile/infer error", "fails to compile or infer the model"),
                  "crashed": ("crash", "crashes"), "hung": ("hang", "hangs")}.get(main.status, (main.status, main.status))
    attributes = ", ".join(f"{key}={value}" for key, value in case.attributes().items())
    lines = [f"# [CPU] {case.op}: {kind} ({main.target_id}, {attributes})", "",
             "## Summary", "",
             f"OpenVINO `{openvino_version()}` on `{main.target_id}` {verb} for a {case.op} the op "
             f"specification allows: data `{list(case.data_shape)}`, kernel `{list(case.kernel_shape)}`, "
             f"{attributes}" + (f", output_shape `{list(case.output_shape)}`" if case.output_shape else "") + ".", ""]
    if main.status == "mismatch":
        expected = np.load(report.bundle / "expected.npy")
        actual = np.load(report.bundle / "actual.npy")
        bound = np.load(report.bundle / "bound.npy")
        lines += ["## What the spec says and what the CPU gives", "",
                  f"Output shape: spec `{list(expected.shape)}`, CPU `{list(actual.shape)}`.", "",
                  main.message.split("\n")[0], "",
                  "| index | spec (float64 oracle) | CPU | allowed difference |", "|---|---|---|---|"]
        lines += [f"| {list(index)} | {want:.9g} | {got:.9g} | {allowed:.3g} |"
                  for index, want, got, allowed in differing_elements(expected, actual, bound)]
        lines.append("")
    else:
        lines += ["## What happens", "", "```", main.message.strip(), "```", ""]
    lines += ["## Environment", "",
              f"- OpenVINO: `{openvino_version()}`",
              f"- CPU: {cpu_info.model}; oneDNN ISA features: {' '.join(cpu_info.features) or 'unknown'}",
              f"- target: `{main.target_id}`" + (f", primitive `{main.primitive}`, computed in {main.precision}"
                                                  if main.primitive else ""), ""]
    if report.bisection:
        bisection = report.bisection
        lines += ["## Releases", "",
                  f"First bad release: **{bisection.get('first_bad') or 'not found'}**; last good release: "
                  f"**{bisection.get('last_good') or 'none measured'}** (ov-conformance bisect).", "",
                  "| release | outcome |", "|---|---|"]
        lines += [f"| {release} | {outcome} |" for release, outcome in bisection.get("outcomes", {}).items()]
        lines.append("")
    if report.others:
        lines += ["## Other ISA caps (ONEDNN_MAX_CPU_ISA)", "", "| target | outcome | primitive |", "|---|---|---|"]
        lines += [f"| `{run.target_id}` | {run.status} | {run.primitive or '-'} |" for run in report.others]
        lines.append("")
    lines += ["## Reproduce", "",
              "With only `openvino` and `numpy` installed, in the attached bundle:", "", "```sh",
              *repro.commands(Path("bundle"), report.target, "data", repro.kernel_environment(report.target)),
              "```", "",
              "oneDNN (benchdnn), the same computation as the spec defines it:", "", "```sh",
              benchdnn_command(case, main.precision or "f32"), "```", ""]
    if report.verbose:
        lines += ["oneDNN verbose (`ONEDNN_VERBOSE=all`) of the failing run:", "", "```",
                  *report.verbose[:6], "```", ""]
    lines += ["## The case (OpenVINO op-spec conformance harness)", "", f"`{case.id}` ({case.source})", "",
              "```yaml", case_yaml(case), "```", ""]
    return "\n".join(lines)


def case_yaml(case: Case) -> str:
    """The case as a one-case file of the harness (spec style, every attribute explicit)."""
    fields = {"name": case.name, "data": list(case.data_shape), "kernel": list(case.kernel_shape),
              "strides": list(case.strides), "pads_begin": list(case.pads_begin), "pads_end": list(case.pads_end),
              "dilations": list(case.dilations), "auto_pad": case.auto_pad}
    if case.output_padding is not None:
        fields["output_padding"] = list(case.output_padding)
    if case.output_shape is not None:
        fields["output_shape"] = list(case.output_shape)
    if case.element_type != "f32":
        fields["element_type"] = case.element_type
    body = "\n".join(f"    {key}: {value}" for key, value in fields.items())
    return f"op: {case.op}\ncases:\n  - " + body.lstrip()


def write_report(case: Case, target: Target, directory: Path | str, *, ir_dir: Path | str = ".conformance/ir",
                 other_caps: tuple[str, ...] = OTHER_CAPS, bisection: dict | None = None,
                 timeout: float = 120.0, isolate: bool = True) -> tuple[UpstreamReport, Path]:
    """Run ``case`` on ``target`` (and under ``other_caps``), write the bundle, verbose log, benchdnn
    line and ``issue.md`` into ``directory``; return the report and the issue's path.

    ``isolate`` runs ``target`` in a worker process (a crash is a status, not the end of this
    process); ISA-capped targets always run in one."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    steps = api.prepare(case)
    main = run_case(case, target, Path(ir_dir), steps, timeout, isolate)
    step = steps[0]
    outcome = main.outcome
    bundle = repro.write_bundle(directory, case, step.inputs, step.reference, target, main.ir,
                                actual=outcome.run.output if outcome is not None else None,
                                outcome=main.status, message=main.message,
                                tolerance=outcome.verdict.tolerance if outcome is not None else None,
                                verdict=None if outcome is None else {"mismatches": outcome.verdict.mismatches,
                                                                      "total": outcome.verdict.total})
    final = directory / "bundle"
    if final.exists():
        shutil.rmtree(final)
    bundle.rename(final)
    others = [run_case(case, Target(target.device, target.precision, target.properties, cap), Path(ir_dir),
                       steps, timeout)
              for cap in other_caps if cap != (target.isa or "")]
    report = UpstreamReport(case, target, main, final, [run for run in others if run.status != "unavailable"],
                            bisection)
    report.verbose = onednn_verbose(final, target, timeout) if main.failed else []
    (directory / "onednn_verbose.txt").write_text("\n".join(report.verbose) + "\n")
    (directory / "benchdnn.txt").write_text(benchdnn_command(case, main.precision or target.precision) + "\n")
    issue = directory / "issue.md"
    issue.write_text(issue_markdown(report))
    return report, issue
