"""pytest plugin: case YAML files become test items (pytest hooks only).

Follows pytest's "Working with non-python tests": ``pytest_collect_file`` ->
``CaseFile.collect`` -> ``CaseItem.runtest`` -> ``repr_failure``. The work is
done by ``conformance.api.check``; this module only wires it into pytest.
"""
from __future__ import annotations

import contextlib
import dataclasses
import gc
import json
import os
import platform
import re
import reprlib
import time
from pathlib import Path

import pytest

from . import api, bundles, cpu, expectations, post_ops, repro, worker
from . import report as reporting
from . import report_writer
from . import targets as target_lists
from .case import (DEFAULT_MEMORY_BUDGET, Case, CaseError, CaseFileErrors, footprint_bytes, format_size, parse_size,
                   printable_path)
from .render import DATA_INPUT_NAME
from .runtime import PRECISIONS, Target, TargetUnavailable, openvino_release, openvino_version

# The fuzzer's --fuzz option and campaign item (a plugin module of its own).
pytest_plugins = ["conformance.fuzzing.pytest_plugin"]

_RECORD_KEY = "conformance_record"
_STATUS_KEY = "conformance_status"  # "crashed" / "hung": the worker died or overran its time limit
_PER_GROUP_KEY = "conformance_per_group"  # api.GroupCheck.record() of a failing grouped item


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance", "OpenVINO op-spec conformance")
    group.addoption("--device", action="append", dest="conformance_devices", metavar="DEVICE",
                    help="OpenVINO device to test (repeatable; default: CPU, or ini conformance_devices)")
    group.addoption("--precision", action="append", dest="conformance_precisions", metavar="HINT",
                    choices=PRECISIONS,
                    help="INFERENCE_PRECISION_HINT to test (repeatable; default f32, or ini conformance_precisions)")
    group.addoption("--target", action="append", dest="conformance_targets", metavar="DEVICE[:PRECISION][:ISA]",
                    help="target to test, e.g. CPU:f32, CPU:f32:avx2 (ISA cap, runs in a worker), CPU:bf16, "
                         "AUTO:f32, HETERO:GPU,CPU:f16 (repeatable; adds to --device x --precision)")
    group.addoption("--targets", dest="conformance_targets_file", metavar="FILE", default=None,
                    help="YAML file listing targets (see conformance/targets.py)")
    group.addoption("--save-results", dest="conformance_save_results", metavar="DIR", default=None,
                    help="write every item's output (.npz) and metadata (.json) to this result bundle "
                         "(compare two with: ov-conformance compare-bundles A B)")
    group.addoption("--runslow", action="store_true", default=False,
                    help="also run cases marked slow (the spec's full-size examples)")
    group.addoption("--conformance-report", metavar="PATH", default=None,
                    help="write the JSON report here, plus a .md summary beside it "
                         "(default: ini conformance_report, reports/conformance.json)")
    group.addoption("--ir-dir", metavar="DIR", default=None,
                    help="where rendered IR is written (default .conformance/ir under the rootdir)")
    group.addoption("--expected-failures", metavar="PATH", default=None,
                    help="expected-failure registry (default: ini conformance_expected_failures)")
    group.addoption("--memory-budget", metavar="SIZE", default=None,
                    help="skip items whose estimated memory (case.footprint_bytes) exceeds SIZE, e.g. 8GiB "
                         "('none' = no limit; default: ini conformance_memory_budget). Case files are refused "
                         f"at load above max(SIZE, {format_size(DEFAULT_MEMORY_BUDGET)}) as likely typos.")
    parser.addini("conformance_memory_budget", "largest estimated memory one item may need (e.g. 16GiB, none)",
                  default="16GiB")
    group.addoption("--progress", action="store_true", default=False,
                    help="print progress lines for long (streamed, full-size) items; also on with -v")
    group.addoption("--isolate", action="store_true", dest="isolate", default=None,
                    help="run OpenVINO in worker processes: a crash is a 'crashed' item, a time-out a 'hung' one "
                         "(the default)")
    group.addoption("--no-isolate", action="store_false", dest="isolate",
                    help="run OpenVINO in the pytest process (a crash in OpenVINO then ends the run)")
    group.addoption("--item-timeout", type=float, metavar="SECONDS", default=None,
                    help="with --isolate: an item whose compile+infer takes longer is 'hung' "
                         f"(default: ini conformance_item_timeout, {worker.DEFAULT_TIMEOUT:g})")
    group.addoption("--repro-dir", metavar="DIR", default=None,
                    help="where repro bundles of failing items are written "
                         "(default: ini conformance_repro_dir, reports/repro)")
    parser.addini("conformance_cases", "directory of case YAML files, relative to the rootdir", default="cases")
    parser.addini("conformance_devices", "devices to test", type="args", default=["CPU"])
    parser.addini("conformance_precisions", "inference precision hints to test", type="args", default=["f32"])
    parser.addini("conformance_targets", "targets to test (DEVICE[:PRECISION][:ISA]); when set, replaces "
                  "conformance_devices x conformance_precisions", type="args", default=[])
    parser.addini("conformance_report", "JSON report path (relative to the rootdir)", default="reports/conformance.json")
    parser.addini("conformance_expected_failures", "expected-failure registry (relative to the rootdir)",
                  default="expected_failures.yaml")
    parser.addini("conformance_item_timeout", "seconds before an isolated item is 'hung'",
                  default=str(worker.DEFAULT_TIMEOUT))
    parser.addini("conformance_repro_dir", "repro bundle directory (relative to the rootdir)", default="reports/repro")


def _targets(config: pytest.Config) -> list[Target]:
    """--target and --targets, plus --device x --precision; with none of them, the ini settings."""
    devices, precisions = config.getoption("conformance_devices"), config.getoption("conformance_precisions")
    try:
        chosen = [target_lists.parse_target(text) for text in config.getoption("conformance_targets") or []]
        if config.getoption("conformance_targets_file"):
            chosen += target_lists.load_targets(config.getoption("conformance_targets_file"))
        if devices or precisions:
            chosen += [target_lists.make_target(device, precision)
                       for device in devices or config.getini("conformance_devices")
                       for precision in precisions or config.getini("conformance_precisions")]
        if not chosen and config.getini("conformance_targets"):
            chosen = [target_lists.parse_target(text) for text in config.getini("conformance_targets")]
        if not chosen:
            chosen = [target_lists.make_target(device, precision) for device in config.getini("conformance_devices")
                      for precision in config.getini("conformance_precisions")]
    except (target_lists.TargetError, CaseError) as error:
        raise pytest.UsageError(f"conformance targets: {error}") from None
    return target_lists.unique(chosen)


class _Session:
    """Per-run state: targets, registry, IR directory, and collected records."""

    def __init__(self, config: pytest.Config):
        root = config.rootpath
        self.cases_root = (root / config.getini("conformance_cases")).resolve()
        self.targets = _targets(config)
        self.ir_dir = Path(config.getoption("ir_dir") or root / ".conformance" / "ir")
        self.run_slow = config.getoption("runslow")
        budget = config.getoption("memory_budget") or config.getini("conformance_memory_budget")
        try:
            self.memory_budget = None if str(budget).lower() == "none" else parse_size(budget)
        except ValueError as error:
            raise pytest.UsageError(f"memory budget: {error}") from None
        # The budget is about this machine: items above it are skipped at run time. Loading
        # only refuses shapes above the larger of it and the default (a typo'd dimension).
        self.load_budget = None if self.memory_budget is None else max(self.memory_budget, DEFAULT_MEMORY_BUDGET)
        self.progress = config.getoption("progress") or config.getoption("verbose") > 0
        registry = config.getoption("expected_failures") or root / config.getini("conformance_expected_failures")
        self.registry_error: CaseError | None = None
        self.registry: list[expectations.ExpectedFailure] = []
        if Path(registry).is_file():
            try:
                self.registry = expectations.load_registry(registry)
            except CaseError as error:
                self.registry_error = error
        report_path = config.getoption("conformance_report") or config.getini("conformance_report")
        self.report_path = root / report_path
        self.repro_dir = root / (config.getoption("repro_dir") or config.getini("conformance_repro_dir"))
        self.root = root
        isolate = config.getoption("isolate")
        self.isolate = True if isolate is None else isolate   # isolated unless --no-isolate
        self.item_timeout = config.getoption("item_timeout") or float(config.getini("conformance_item_timeout"))
        self.records: dict[str, reporting.ItemRecord] = {}
        self.started = time.time()
        self.run = api.RunSession(self.ir_dir, self.isolate, self.item_timeout)   # the oracle cache, check policy
        self.written: tuple[Path, Path, Path] | None = None
        self.totals: dict[str, int] = {}
        # Outputs go to a result bundle when asked (--save-results), and to a scratch one when
        # several targets run, for the cross-target diff in the report.
        save_results = config.getoption("conformance_save_results")
        self.results_dir: Path | None = (Path(save_results) if save_results else
                                         root / ".conformance" / "results" if len(self.targets) > 1 else None)
        if self.results_dir is not None and not hasattr(config, "workerinput"):
            bundles.start_bundle(self.results_dir, {"openvino_version": openvino_version(),
                                                    "targets": [target.id for target in self.targets]}, clear=True)
        self.kinds: dict[str, dict[str, int]] = {}

    def relative(self, path: Path | str, start: Path | None = None, *, resolve: bool = True) -> str:
        """``path`` relative to ``start`` (default the rootdir), so reports don't depend on the checkout;
        ``resolve=False`` keeps a symlink's own name (a case file pointing elsewhere is named as written)."""
        where = _resolved(path) if resolve else Path(os.path.abspath(path))
        return Path(os.path.relpath(where, (start or self.root).resolve())).as_posix()

    def targets_for(self, case: Case) -> list[Target]:
        """The session's targets, plus each of them under the hints the case declares (``precisions``)."""
        targets = list(self.targets)
        for target in self.targets:
            for precision in case.precisions:
                extra = dataclasses.replace(target, precision=precision)
                if all(t.id != extra.id for t in targets):
                    targets.append(extra)
        return targets


def _resolved(path: Path | str) -> Path:
    """``path`` with symlinks resolved; as given (made absolute) when it cannot be (a symlink loop)."""
    try:
        return Path(path).resolve()
    except (OSError, RuntimeError):
        return Path(path).absolute()


_STATE = pytest.StashKey[_Session]()


def pytest_configure(config: pytest.Config) -> None:
    state = _Session(config)
    config.stash[_STATE] = state
    # Registered as a plugin of its own so its hooks (records, report) see the state.
    config.pluginmanager.register(_Recorder(state), "conformance-recorder")
    config.addinivalue_line("markers", "slow: the spec's full-size examples; run with --runslow")
    if hasattr(config, "workerinput"):
        _share_cores(int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))


def _share_cores(workers: int) -> None:
    """xdist worker: use cores/workers threads in torch and OpenVINO (here and in its OpenVINO worker
    process), not every core each.

    With ``-n 2`` on 2 cores, two workers each running 2 torch + 2 OpenVINO threads
    oversubscribe the machine; one thread each keeps both cores busy without
    contention. Thread counts change no result (same kernels, same per-element sums).
    """
    threads = max(1, (os.cpu_count() or 1) // max(1, workers))
    # Isolated items run OpenVINO in a worker process of this xdist worker: it reads this at start.
    os.environ[worker.CPU_THREADS_VARIABLE] = str(threads)
    import torch
    torch.set_num_threads(threads)
    from .runtime import core
    try:
        core().set_property("CPU", {"INFERENCE_NUM_THREADS": threads})
    except RuntimeError:
        pass  # no CPU plugin: nothing to share


def pytest_collection_finish(session: pytest.Session) -> None:
    # Collection imports neither torch nor OpenVINO (the xdist controller and --collect-only
    # never need them). A run that will check cases needs both: import them now, so that
    # what is alive after this (torch, OpenVINO, the collected items) lives for the whole run
    # and moves out of the garbage collector's generations: each full collection (pytest
    # runs several at session end) then scans only what the items create (~0.3 s otherwise).
    if not session.config.option.collectonly and any(isinstance(item, CaseItem) for item in session.items):
        state = session.config.stash[_STATE]
        if state.isolate:
            # The OpenVINO worker starts now and imports OpenVINO while this process imports torch.
            for environment in {tuple(sorted(target.environment().items())) for target in state.targets}:
                worker.pool().prestart(dict(environment))
        # torch first, as when the plugin imported it at module level (the order both were
        # measured in; docs/performance.md).
        import torch  # noqa: F401
        import openvino  # noqa: F401
    gc.freeze()


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    state = parent.config.stash[_STATE]
    if file_path.suffix in (".yaml", ".yml") and (
            state.cases_root in _resolved(file_path).parents or state.cases_root in file_path.absolute().parents):
        # A symlink inside cases/ leading outside it is collected, and refused by the loader.
        shown = Path(printable_path(file_path))
        if shown != file_path:
            # A name that is not printable UTF-8 (refused by the loader) must not reach pytest's node
            # ids and keywords: xdist cannot send them between processes. The item is named by its
            # escaped path, under the nearest directory whose own name is printable.
            while parent.parent is not None and Path(printable_path(parent.path)) != parent.path:
                parent = parent.parent
            return CaseFile.from_parent(parent, path=shown, unprintable_path=file_path)
        return CaseFile.from_parent(parent, path=file_path)
    return None


class CaseFile(pytest.File):
    """One case YAML file; a broken file yields a single failing item, never a crash."""

    def __init__(self, *, unprintable_path: Path | None = None, **kwargs):
        super().__init__(**kwargs)
        self.file_path = unprintable_path or self.path   # the file on disk (``path`` is its shown name)

    def collect(self):
        """The file's items (one per case and target), or one ``InvalidCaseFile`` item: nothing a
        case file holds stops the session (no collection error)."""
        state = self.config.stash[_STATE]
        try:
            items = list(self._items(state))
        except Exception as error:  # noqa: BLE001 - CaseError, or a harness bug: still one located item
            if not isinstance(error, CaseError):
                error = CaseError(self.path, None, None, f"could not be collected: unexpected "
                                                         f"{type(error).__name__}: {reprlib.repr(str(error))}")
            yield InvalidCaseFile.from_parent(self, name="invalid-case-file", error=_relative_errors(state, error))
            return
        yield from items

    def _items(self, state: _Session):
        cases = api.load_cases(self.file_path, state.cases_root, memory_budget=state.load_budget)
        release = openvino_release()
        for case in cases:
            suffix = case.id.split("::", 1)[1][len(case.name):]
            for target in state.targets_for(case):
                item = CaseItem.from_parent(self, name=f"{case.name}{suffix}[{target.id}]", case=case, target=target)
                if "slow" in case.marks:
                    item.add_marker(pytest.mark.slow)
                if "slow" in case.marks and not state.run_slow:
                    item.add_marker(pytest.mark.skip(reason="slow (full-size) case: run with --runslow"))
                elif state.memory_budget is not None and footprint_bytes(case) > state.memory_budget:
                    item.add_marker(pytest.mark.skip(
                        reason=f"needs about {format_size(footprint_bytes(case))} (estimated: case.footprint_bytes), "
                               f"over the memory budget of {format_size(state.memory_budget)} "
                               f"(raise it with --memory-budget / ini conformance_memory_budget)"))
                # Entries may depend on the CPU features the target's kernels may use: this
                # CPU's, left by the target's ISA cap (conformance.cpu).
                features = expectations.target_features(target.isa)
                known = expectations.match(state.registry, case.id, target.id, release, features)
                if known is not None:
                    # Only the registered kind of failure counts as expected; anything else fails.
                    # "error": OpenVINO raised (DeviceRejected: compile/infer of a valid model failed);
                    # "crashed"/"hung": the isolated worker did (told apart in runtest).
                    item.registered_failure = known.fails
                    item.add_marker(pytest.mark.xfail(reason=known.describe(features), strict=True,
                                                      raises=_xfail_raises(known.fails)))
                yield item


def _relative_errors(state: _Session, error: CaseError) -> CaseError:
    """``error`` (every problem of a ``CaseFileErrors``) with paths relative to the rootdir, so the
    report does not depend on where the checkout is."""
    problems = error.errors if isinstance(error, CaseFileErrors) else [error]
    relative = [CaseError(state.relative(problem.path, resolve=False), problem.line, problem.field, problem.message)
                for problem in problems]
    return CaseFileErrors(relative) if isinstance(error, CaseFileErrors) else relative[0]


class InvalidCaseFile(pytest.Item):
    """Stands for a case file that could not be loaded; fails with the located message."""

    def __init__(self, *, error: CaseError, **kwargs):
        super().__init__(**kwargs)
        self.error = error
        state = self.config.stash[_STATE]
        self.user_properties += [("case_id", printable_path(state.relative(self.path, resolve=False))), ("target", "-"),
                                 ("op", reporting.INVALID_CASE_FILE), ("source", f"{error.path}:{error.line or 1}")]

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo, style=None) -> str:
        return f"invalid case file\n{self.error}" if isinstance(excinfo.value, CaseError) else super().repr_failure(excinfo)

    def reportinfo(self):
        return self.path, (self.error.line or 1) - 1, f"invalid case file {self.error.path}"


class ConformanceFailure(AssertionError):
    """The device's output differs from what the spec says."""

    def __init__(self, outcome: api.Outcome):
        super().__init__(outcome.verdict.describe())
        self.outcome = outcome


class DeviceRejected(AssertionError):
    """OpenVINO failed to compile or infer a model the spec allows (the runtime's message)."""


class UntrustworthyItem(AssertionError):
    """The reference cannot distinguish a right output from a wrong one: the item proves nothing."""


class OtherWorkerFailure(AssertionError):
    """The worker crashed where the registry expects it to hang, or the other way round."""


def _xfail_raises(kind: str):
    """The exception class(es) that count as a registered kind of failure (``fails`` in the registry)."""
    return {"mismatch": ConformanceFailure, "error": (RuntimeError, DeviceRejected),
            "crashed": worker.WorkerFailed, "hung": worker.WorkerFailed}[kind]


def describe_case(case: Case) -> str:
    """One line of a case's shapes and attributes, as a failure needs them."""
    attributes = " ".join(f"{key}={value}" for key, value in case.attributes().items())
    shape = f" output_shape={','.join(map(str, case.output_shape))}" if case.output_shape else ""
    note = f"\nspec note: {case.spec_note}" if case.spec_note else ""
    numerics = "" if case.element_type == "f32" else f" element_type={case.element_type}"
    numerics += "".join(f" {name}=parameter" for name in ("kernel_input", "output_shape_input")
                        if getattr(case, name) == "parameter")
    if case.dynamic:
        numerics += f" data_dims={list(case.data_dims)} infer_shapes={[list(s) for s in case.infer_shapes]}"
    return (f"{case.op} data={list(case.data_shape)} kernel={list(case.kernel_shape)} {attributes}{shape} "
            f"fill={case.fill} seed={case.seed}{numerics}{post_ops.describe(case)}{note}")


class CaseItem(pytest.Item):
    """One case on one target."""

    def __init__(self, *, case: Case, target: Target, **kwargs):
        super().__init__(**kwargs)
        self.case = case
        self.target = target
        self.outcome: api.Outcome | None = None
        self.repro: Path | None = None
        self.registered_failure: str | None = None   # the registry's 'fails' for this item, if registered
        self.per_group: api.GroupCheck | None = None  # a failing grouped item re-run as its sibling op per group
        state = self.config.stash[_STATE]
        source = f"{state.relative(case.source.path)}:{case.source.line}"
        self.user_properties += [("case_id", case.id), ("target", target.id), ("op", case.op), ("source", source),
                                 ("kinds", json.dumps(item_kinds(case, target)))]

    def runtest(self) -> None:
        state = self.config.stash[_STATE]
        if state.registry_error is not None:
            raise state.registry_error
        inputs, steps = state.run.prepared(self.case)
        # The oracle's time is recorded on the item that computed it; later targets reuse it.
        self.oracle_seconds = 0.0
        if steps is not None and state.run.reference_owner is None:
            state.run.reference_owner = self.nodeid
            self.oracle_seconds = sum(step.reference.seconds for step in steps)
        try:
            # An item registered to crash or hang runs in a worker even with --no-isolate: run
            # in-process, the known crash would take the whole run down.
            self.outcome = state.run.check(self.case, self.target,
                                           force_isolation=self.registered_failure in ("crashed", "hung"),
                                           progress=self._progress_writer())
        except TargetUnavailable as reason:
            pytest.skip(str(reason))
        except api.RuntimeRejected as error:
            # A bundle all the same: its reproduce.py shows OpenVINO's error (the IR is cached by digest).
            ir = api.render(self.case, inputs, state.ir_dir)
            self._write_repro(inputs, steps, ir, outcome="rejected", message=str(error))
            self._record_timing(error.seconds, ir)
            self._check_per_group(inputs, steps)
            raise DeviceRejected(str(error)) from None
        except api.Untrustworthy as problem:
            self._record_timing({})
            raise UntrustworthyItem(str(problem)) from None
        except worker.WorkerFailed as failed:
            # The IR is cached by digest: rendering again returns the file the worker read.
            ir = api.render(self.case, inputs, state.ir_dir)
            self._write_repro(inputs, steps, ir, outcome=failed.failure.status, message=failed.failure.describe())
            self.user_properties.append((_STATUS_KEY, failed.failure.status))
            self.user_properties.append((_RECORD_KEY, json.dumps({
                "repro": state.relative(self.repro, state.report_path.parent),
                "run": {"ir": state.relative(ir.xml_path), "ir_digest": ir.digest,
                        **({"isa_cap": self.target.isa} if self.target.isa else {})}, "verdict": {}})))
            if self.registered_failure in ("crashed", "hung") and failed.failure.status != self.registered_failure:
                raise OtherWorkerFailure(f"registered as '{self.registered_failure}', but the worker "
                                         f"{failed.failure.status}: {failed.failure.describe()}") from None
            raise
        # The step shown (and bundled): the first failing inference, else the last (api.check);
        # streamed items have no whole reference (None).
        chosen = self.outcome.step_index
        expected = steps[chosen].reference if steps else None
        step_inputs = steps[chosen].inputs if steps else inputs
        output = self.outcome.run.output if not steps or len(steps) == 1 else self.outcome.run.outputs[chosen]
        if not self.outcome.verdict.passed:
            verdict = self.outcome.verdict
            self._write_repro(inputs, steps, self.outcome.ir, chosen, actual=output, message=self.outcome.describe(),
                              tolerance=verdict.tolerance,
                              verdict={"mismatches": verdict.mismatches, "total": verdict.total})
        if state.results_dir is not None:
            outcome = self.outcome
            bundles.write_item(state.results_dir, case_id=self.case.id, op=self.case.op, target=self.target,
                               inputs=step_inputs, ir_digest=outcome.ir.digest,
                               run=dataclasses.replace(outcome.run, output=output),
                               bound=None if expected is None else bundles.tolerance_bound(
                                   expected.output, expected.magnitude, outcome.verdict.tolerance),
                               passed=outcome.verdict.passed)
        self.user_properties.append((_RECORD_KEY, json.dumps(self._record_fields())))
        if not self.outcome.verdict.passed:
            self._check_per_group(inputs, steps)
            raise ConformanceFailure(self.outcome)

    def _check_per_group(self, inputs, steps) -> None:
        """A failing grouped item: the same computation as its ungrouped sibling op, one model per
        group (``api.check_per_group``), for the failure message and the report record."""
        self.per_group = self.config.stash[_STATE].run.check_per_group(self.case, self.target)
        if self.per_group is not None:
            self.user_properties.append((_PER_GROUP_KEY, json.dumps(self.per_group.record())))

    def _write_repro(self, inputs, steps, ir, index: int = 0, **details) -> None:
        """The repro bundle of this failing item: step ``index``'s inputs (every runtime input the IR
        declares), its reference, and ``details`` (``repro.write_bundle``'s keywords)."""
        state = self.config.stash[_STATE]
        if steps:
            step = steps[index]
            case, step_inputs, expected = self.case.at_data_shape(step.data_shape), step.inputs, step.reference
            feed = api.feeds(self.case, steps)[index]
        else:   # streamed: no whole reference
            case, step_inputs, expected = self.case, inputs, None
            feed = api.feeds(self.case, (api.Step(self.case.data_shape, inputs, None),))[0]
        self.repro = repro.write_bundle(state.repro_dir, case, step_inputs, expected, self.target, ir, feed=feed,
                                        **details)

    def _record_timing(self, seconds: dict, ir=None) -> None:
        """An item that ended before a verdict still records the work it cost (for the overhead figures),
        its IR and its repro bundle."""
        state = self.config.stash[_STATE]
        timing = {key: round(value, 6) for key, value in seconds.items()}
        if self.target.isa:
            timing["isa_cap"] = self.target.isa
        if self.oracle_seconds:
            timing["oracle_seconds"] = round(self.oracle_seconds, 6)
        if ir is not None:
            timing.update(ir=state.relative(ir.xml_path), ir_digest=ir.digest)
        repro_path = state.relative(self.repro, state.report_path.parent) if self.repro else None
        self.user_properties.append((_RECORD_KEY, json.dumps({"repro": repro_path, "run": timing, "verdict": {}})))

    def _progress_writer(self):
        """Per-slab progress lines for streamed items with --progress or -v (not from xdist workers)."""
        state = self.config.stash[_STATE]
        reporter = self.config.pluginmanager.get_plugin("terminalreporter")
        if not state.progress or reporter is None or hasattr(self.config, "workerinput"):
            return None

        capture = self.config.pluginmanager.get_plugin("capturemanager")

        def write(line: str) -> None:
            # Output capture is on while an item runs: step around it, as pytest's live logging does.
            with capture.global_and_fixture_disabled() if capture else contextlib.nullcontext():
                reporter.ensure_newline()
                reporter.write_line(f"  progress: {line}")
        return write

    def _record_fields(self) -> dict:
        state = self.config.stash[_STATE]
        return reporting.outcome_fields(
            self.outcome, self.target, expectations.target_features(self.target.isa),
            repro=state.relative(self.repro, state.report_path.parent) if self.repro else None,
            ir=state.relative(self.outcome.ir.xml_path), oracle_seconds=self.outcome.oracle_seconds or self.oracle_seconds)

    def repr_failure(self, excinfo, style=None) -> str:
        if isinstance(excinfo.value, ConformanceFailure):
            outcome = excinfo.value.outcome
            run = outcome.run
            return "\n".join([
                f"{self.case.id} on {self.target.id}: OpenVINO's output differs from the spec",
                f"case: {self.case.source}",
                describe_case(self.case),
                outcome.describe(),
                f"ran: {run.device} precision={run.inference_precision} primitive={run.primitive_type} "
                f"op runtimePrecision={run.runtime_precision} outputPrecisions={run.output_precision} "
                f"OpenVINO {run.openvino_version}",
                *filter(None, [post_ops.fusion_line(run.extra.get("post_ops"))]),
                f"IR: {outcome.ir.xml_path}",
                *self._per_group_lines(),
                *self._repro_lines(),
            ])
        if isinstance(excinfo.value, worker.WorkerFailed):
            failure = excinfo.value.failure
            return "\n".join([
                f"{self.case.id} on {self.target.id}: the OpenVINO worker {failure.status} "
                f"(isolated run, time limit {self.config.stash[_STATE].item_timeout:g} s)",
                f"case: {self.case.source}", describe_case(self.case), failure.describe(), *self._repro_lines()])
        if isinstance(excinfo.value, OtherWorkerFailure):
            return "\n".join([f"{self.case.id} on {self.target.id}: the OpenVINO worker failed otherwise than "
                              f"registered", f"case: {self.case.source}", str(excinfo.value), *self._repro_lines()])
        if isinstance(excinfo.value, (DeviceRejected, UntrustworthyItem)):
            what = ("OpenVINO rejects a model the spec allows" if isinstance(excinfo.value, DeviceRejected)
                    else "untrustworthy item: the reference cannot tell right from wrong")
            return "\n".join([f"{self.case.id} on {self.target.id}: {what}", f"case: {self.case.source}",
                              describe_case(self.case), str(excinfo.value), *self._per_group_lines(),
                              *self._repro_lines()])
        if isinstance(excinfo.value, CaseError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def _per_group_lines(self) -> list[str]:
        return [] if self.per_group is None else [self.per_group.describe()]

    def _repro_lines(self) -> list[str]:
        if self.repro is None:
            return []
        state = self.config.stash[_STATE]
        bundle = Path(state.relative(self.repro, Path.cwd()))
        environment = repro.kernel_environment(self.target)
        return [f"repro bundle: {bundle}/", *(f"reproduce: {line}" for line in
                                               repro.commands(bundle, self.target, DATA_INPUT_NAME, environment))]

    def reportinfo(self):
        return self.path, self.case.source.line - 1, f"{self.case.id} [{self.target.id}]"


def item_kinds(case: Case, target: Target) -> list[str]:
    """Report groups of one item: the case's kinds plus ``precision=<hint>`` for non-f32 hints."""
    kinds = list(case.kinds)
    if target.precision != "f32":
        kinds.insert(0, f"precision={target.precision}")
    return kinds


def _item_outcome(test_report: pytest.TestReport) -> str:
    if test_report.when == "call":
        if hasattr(test_report, "wasxfail"):
            return "xfailed" if test_report.skipped else "xpassed"
        if test_report.failed and "XPASS(strict)" in str(test_report.longrepr):
            return "xpassed"
        return test_report.outcome
    return "skipped" if test_report.skipped else "error"


class _Recorder:
    """Turns test reports into ``ItemRecord``s and writes the report at the end."""

    def __init__(self, state: _Session):
        self.state = state

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """One record per item, from its reports (runs on the xdist controller too)."""
        _record(self.state, report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A collector that failed (a broken conftest or test module: case files never do) is an
        ``error`` row in the report; under xdist the controller sees each one once, as in a serial run."""
        if report.failed:
            _record_collection_error(self.state, report)

    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        worker.shutdown()
        if hasattr(session.config, "workerinput"):
            return  # xdist worker: the controller writes the report
        if self.state.records:
            document = reporting.build_report(list(self.state.records.values()), _environment(self.state))
            if self.state.results_dir is not None and len(self.state.targets) > 1:
                document["cross_target"] = bundles.summarize_differences(
                    bundles.cross_target_diffs(self.state.results_dir))
            self.state.written = report_writer.write_report(document, self.state.report_path)
            self.state.totals = document["summary"]["totals"]
            self.state.kinds = document["summary"].get("kinds", {})

    def pytest_terminal_summary(self, terminalreporter) -> None:
        if self.state.written:
            totals = ", ".join(f"{self.state.totals[name]} {name}" for name in reporting.OUTCOMES
                               if self.state.totals[name])
            terminalreporter.write_sep("-", "conformance report")
            json_path, markdown_path, html_path = self.state.written
            terminalreporter.write_line(f"{totals}; JSON: {json_path}  Markdown: {markdown_path}  HTML: {html_path}")
            for kind, counts in self.state.kinds.items():
                terminalreporter.write_line(f"  {kind}: " + ", ".join(
                    f"{count} {name}" for name, count in counts.items() if count))


def _record(state: _Session, report: pytest.TestReport) -> None:
    properties = dict(report.user_properties)
    if "case_id" not in properties or (report.when != "call" and report.passed):
        return
    record = state.records.get(report.nodeid)
    if record is None:
        record = state.records[report.nodeid] = reporting.ItemRecord(
            nodeid=report.nodeid, case_id=properties["case_id"], target_id=properties["target"],
            op=properties["op"], source=properties["source"], kinds=json.loads(properties.get("kinds", "[]")))
    if report.when == "teardown" and record.outcome != "passed":
        return  # a teardown problem after a failure does not replace the failure
    record.outcome = properties.get(_STATUS_KEY) if report.failed and _STATUS_KEY in properties \
        else _item_outcome(report)
    record.duration_seconds = round(record.duration_seconds + report.duration, 6)
    if record.outcome != "passed":
        reason = getattr(report, "wasxfail", None) or (report.longreprtext or "")
        if report.skipped and isinstance(report.longrepr, tuple):
            reason = report.longrepr[2]
        # xdist puts "[gw0] linux -- Python 3.11.7 ..." first; the report must not depend on the worker.
        record.reason = re.sub(r"^\[gw\d+\] [^\n]*\n", "", reason.strip()).strip() or None
    if _RECORD_KEY in properties:
        fields = json.loads(properties[_RECORD_KEY])
        record.run, record.verdict, record.repro = fields["run"], fields["verdict"], fields["repro"]
    if _PER_GROUP_KEY in properties:
        record.per_group = json.loads(properties[_PER_GROUP_KEY])


def _record_collection_error(state: _Session, report: pytest.CollectReport) -> None:
    path = report.nodeid.split("::", 1)[0] or "."
    reason = re.sub(r"^\[gw\d+\] [^\n]*\n", "", (report.longreprtext or "").strip()).strip()
    state.records[report.nodeid] = reporting.ItemRecord(
        nodeid=report.nodeid, case_id=path, target_id="-", op="(collection error)", source=path,
        outcome="error", reason=reason or "collection failed")


def _environment(state: _Session) -> dict:
    # The build string the items recorded: the xdist controller never imports OpenVINO itself.
    recorded = next((record.run["openvino_version"] for record in state.records.values()
                     if record.run and record.run.get("openvino_version")), None)
    this_cpu = cpu.this_cpu()
    return {"openvino_version": recorded or openvino_version(), "targets": [target.id for target in state.targets],
            "python": platform.python_version(), "machine": platform.machine(),
            "cpu": this_cpu.model, "cpu_features": list(this_cpu.features),
            **({"onednn_max_cpu_isa": cpu.process_isa_cap()} if cpu.process_isa_cap() else {})}


def pytest_report_header(config: pytest.Config) -> list[str]:
    state = config.stash[_STATE]
    return [f"conformance: OpenVINO {openvino_release()}, targets {', '.join(t.id for t in state.targets)}, "
            f"cases {state.cases_root}"
            + (f", isolated in worker processes (time limit {state.item_timeout:g} s)" if state.isolate else ""),
            f"conformance: CPU {cpu.this_cpu().model}, oneDNN ISA features: "
            f"{' '.join(cpu.this_cpu().features) or 'none known'} (expected failures may depend on them)"]
