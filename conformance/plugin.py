"""pytest plugin: case YAML files become test items (pytest hooks only).

Follows pytest's "Working with non-python tests": ``pytest_collect_file`` ->
``CaseFile.collect`` -> ``CaseItem.runtest`` -> ``repr_failure``. The work is
done by ``conformance.api``: ``item_policy`` says which items are skipped or expected
to fail, ``RunSession.run_item`` checks an item and ends it as an ``ItemResult``
(bundles and record fields included); this module maps that onto pytest (markers,
skip, raise, user_properties) and turns pytest's reports into the report.
"""
from __future__ import annotations

import atexit
import contextlib
import gc
import importlib
import json
import logging
import os
import re
import reprlib
import sys
import threading
import time
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

# Only light modules here (no stage, no numpy): pytest imports this module before anything runs, and
# the xdist controller, which never collects or runs an item, starts its workers sooner without them
# (docs/performance.md, "Session 7"). The stages (api and what it imports) are imported where used.
from . import cpu, settings, xdist_split
from . import report as reporting
from . import report_writer
from . import targets as target_lists
from .settings import DEFAULT_MEMORY_BUDGET, format_size, parse_size
from .targets import PRECISIONS, Target

if TYPE_CHECKING:
    from . import api, expectations
    from .case import Case, CaseError

# The fuzzer's --fuzz option and campaign item (a plugin module of its own).
pytest_plugins = ["conformance.fuzzing.pytest_plugin"]

_RECORD_KEY = "conformance_record"
_STATUS_KEY = "conformance_status"  # "crashed" / "hung": the worker died or overran its time limit
_PER_GROUP_KEY = "conformance_per_group"  # api.GroupCheck.record() of a failing grouped item
DEFAULT_BATCH_SIZE = 32   # measured: docs/performance.md, "Batched compilation"
_PERF_KEY = "conformance_perf"  # perf.measure's record of a passed item (--perf)


# Set by an xdist worker whose session ended cleanly (pytest_unconfigure): its process may then end
# without the interpreter's teardown (``_end_finished_xdist_worker``).
_worker_finished = False


def _end_finished_xdist_worker() -> None:
    """An xdist worker's process, its session over, ends here without the interpreter's teardown:
    unloading torch and OpenVINO (their C++ destructors, every module's objects) took ~0.2 s, and
    the controller waits for it before its own end. Registered when this module is imported, before
    conftests and most plugins register theirs: exit handlers run last-registered first, so theirs
    have run when this one does (logging's, registered earlier, is called here). Nothing else
    runs in that process after its session: its results went to the controller during it."""
    if _worker_finished:
        logging.shutdown()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


atexit.register(_end_finished_xdist_worker)


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
                         f"(default: ini conformance_item_timeout, {settings.DEFAULT_TIMEOUT:g})")
    group.addoption("--repro-dir", metavar="DIR", default=None,
                    help="where repro bundles of failing items are written "
                         "(default: ini conformance_repro_dir, reports/repro)")
    group.addoption("--perf", action="store_true", default=None,
                    help="performance view: time every passed item on OpenVINO (its single-case model) and "
                         "torch (float32), GFLOP/s, in the reports and result bundles (default: ini conformance_perf)")
    group.addoption("--perf-threads", type=int, metavar="N", default=None,
                    help="with --perf: INFERENCE_NUM_THREADS and torch threads while timing "
                         "(default: ini conformance_perf_threads, 1)")
    group.addoption("--perf-budget", type=float, metavar="SECONDS", default=None,
                    help=f"with --perf: seconds of timed repeats per item and side, after at least "
                         f"{settings.PerfSettings.min_repeats} (default {settings.PerfSettings.budget_seconds:g})")
    parser.addini("conformance_perf", "performance view of passed items (as --perf)", type="bool", default=False)
    parser.addini("conformance_perf_threads", "threads while timing with --perf", default="1")
    parser.addini("conformance_cases", "directory of case YAML files, relative to the rootdir", default="cases")
    parser.addini("conformance_devices", "devices to test", type="args", default=["CPU"])
    parser.addini("conformance_precisions", "inference precision hints to test", type="args", default=["f32"])
    parser.addini("conformance_targets", "targets to test (DEVICE[:PRECISION][:ISA]); when set, replaces "
                  "conformance_devices x conformance_precisions", type="args", default=[])
    parser.addini("conformance_report", "JSON report path (relative to the rootdir)", default="reports/conformance.json")
    parser.addini("conformance_expected_failures", "expected-failure registry (relative to the rootdir)",
                  default="expected_failures.yaml")
    parser.addini("conformance_item_timeout", "seconds before an isolated item is 'hung'",
                  default=str(settings.DEFAULT_TIMEOUT))
    group.addoption("--batch-size", type=int, dest="conformance_batch_size", metavar="N", default=None,
                    help="compile up to N cases of one target and element type as one model (static ones, or else "
                         "dynamic-shape ones; outputs, primitives and "
                         "verdicts stay per case; a case failing inside a batch is re-run alone); 1 = one model "
                         f"per case (default: ini conformance_batch_size, {DEFAULT_BATCH_SIZE})")
    parser.addini("conformance_batch_size", "cases compiled as one model (1: one model per case)",
                  default=str(DEFAULT_BATCH_SIZE))
    parser.addini("conformance_repro_dir", "repro bundle directory (relative to the rootdir)", default="reports/repro")
    group.addoption("--xdist-split", choices=("interleaved", "xdist"), default=None,
                    help="with -n N and xdist's default --dist load: 'interleaved' (default) sends worker K items "
                         "K, K+N, ... up front, so it batches them as a serial run does (xdist_split.py); 'xdist' "
                         "leaves xdist's own load scheduler (default: ini conformance_xdist_split)")
    parser.addini("conformance_xdist_split", "xdist scheduling under -n with --dist load: interleaved or xdist",
                  default="interleaved")


def _targets(config: pytest.Config) -> list[Target]:
    """--target and --targets, plus --device x --precision; with none of them, the ini settings."""
    devices, precisions = config.getoption("conformance_devices"), config.getoption("conformance_precisions")
    try:
        chosen = [target_lists.parse_target(text) for text in config.getoption("conformance_targets") or []]
        if config.getoption("conformance_targets_file"):
            chosen += _targets_file(config.getoption("conformance_targets_file"))
        if devices or precisions:
            chosen += [target_lists.make_target(device, precision)
                       for device in devices or config.getini("conformance_devices")
                       for precision in precisions or config.getini("conformance_precisions")]
        if not chosen and config.getini("conformance_targets"):
            chosen = [target_lists.parse_target(text) for text in config.getini("conformance_targets")]
        if not chosen:
            chosen = [target_lists.make_target(device, precision) for device in config.getini("conformance_devices")
                      for precision in config.getini("conformance_precisions")]
    except target_lists.TargetError as error:
        raise pytest.UsageError(f"conformance targets: {error}") from None
    return target_lists.unique(chosen)


def _targets_file(path: str) -> list[Target]:
    """``--targets FILE`` (read with the case YAML loader: imported only when one is given)."""
    from .case import CaseError
    try:
        return target_lists.load_targets(path)
    except CaseError as error:
        raise pytest.UsageError(f"conformance targets: {error}") from None


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
        self.registry_path = Path(config.getoption("expected_failures")
                                  or root / config.getini("conformance_expected_failures"))
        report_path = config.getoption("conformance_report") or config.getini("conformance_report")
        self.report_path = root / report_path
        self.repro_dir = root / (config.getoption("repro_dir") or config.getini("conformance_repro_dir"))
        self.root = root
        isolate = config.getoption("isolate")
        self.isolate = True if isolate is None else isolate   # isolated unless --no-isolate
        self.item_timeout = config.getoption("item_timeout") or float(config.getini("conformance_item_timeout"))
        self.records: dict[str, reporting.ItemRecord] = {}
        self.started = time.time()
        self.written: tuple[Path, Path, Path] | None = None
        self.totals: dict[str, int] = {}
        # Outputs go to a result bundle when asked (--save-results), and to a scratch one when
        # several targets run, for the cross-target diff in the report.
        save_results = config.getoption("conformance_save_results")
        self.results_dir: Path | None = (Path(save_results) if save_results else
                                         root / ".conformance" / "results" if len(self.targets) > 1 else None)
        if self.results_dir is not None and not hasattr(config, "workerinput"):
            from . import bundles
            from .runtime import openvino_version
            bundles.start_bundle(self.results_dir, {"openvino_version": openvino_version(),
                                                    "targets": [target.id for target in self.targets]}, clear=True)
        self.batch_size = config.getoption("conformance_batch_size") or int(config.getini("conformance_batch_size"))
        if self.batch_size < 1:
            raise pytest.UsageError(f"--batch-size / conformance_batch_size: {self.batch_size}: must be >= 1")
        self.perf_settings = _perf_settings(config)
        self.kinds: dict[str, dict[str, int]] = {}

    # The registry and the run session are made when first used: by a process that collects case
    # files and runs items, never by the xdist controller.

    @cached_property
    def _registry(self) -> tuple[list[expectations.ExpectedFailure], CaseError | None]:
        from . import expectations
        from .case import CaseError
        if not self.registry_path.is_file():
            return [], None
        try:
            return expectations.load_registry(self.registry_path), None
        except CaseError as error:
            return [], error

    @property
    def registry(self) -> list[expectations.ExpectedFailure]:
        """The expected-failure registry's entries (none if it is missing or broken)."""
        return self._registry[0]

    @property
    def registry_error(self) -> CaseError | None:
        """Why the registry could not be loaded (every item then fails with it), or None."""
        return self._registry[1]

    @cached_property
    def run(self) -> api.RunSession:
        """The oracle cache, the check, batches and each item's ending (repro and result bundles, record fields)."""
        from . import api
        return api.RunSession(self.ir_dir, self.isolate, self.item_timeout, repro_dir=self.repro_dir,
                              results_dir=self.results_dir, root=self.root, report_dir=self.report_path.parent,
                              perf_settings=self.perf_settings, batch_size=self.batch_size)

    def close(self) -> None:
        """End the run session and the OpenVINO workers, if this process started them."""
        if "run" in self.__dict__:
            from . import worker
            self.run.close()
            worker.shutdown()

    def relative(self, path: Path | str, start: Path | None = None, *, resolve: bool = True) -> str:
        """``path`` relative to ``start`` (default the rootdir), so reports don't depend on the checkout;
        ``resolve=False`` keeps a symlink's own name (a case file pointing elsewhere is named as written)."""
        from . import api
        return api.relative_path(path, start or self.root, resolve=resolve)


def _perf_settings(config: pytest.Config) -> settings.PerfSettings | None:
    """--perf / ini conformance_perf with its thread count and time budget; None without it."""
    if not (config.getoption("perf") or config.getini("conformance_perf")):
        return None
    threads = config.getoption("perf_threads") or config.getini("conformance_perf_threads")
    budget = config.getoption("perf_budget")
    if not str(threads).isdigit() or int(threads) < 1 or (budget is not None and budget < 0):
        raise pytest.UsageError(f"--perf-threads / ini conformance_perf_threads must be a whole number of at least 1 "
                                f"(got {threads!r}) and --perf-budget not negative (got {budget!r})")
    return settings.PerfSettings(threads=int(threads), **({} if budget is None else {"budget_seconds": budget}))


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
    config.pluginmanager.register(_Recorder(state, config), "conformance-recorder")
    config.addinivalue_line("markers", "slow: the spec's full-size examples; run with --runslow")
    if hasattr(config, "workerinput"):
        _share_cores(_worker_threads())


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    global _worker_finished
    _worker_finished = hasattr(config, "workerinput")


def _worker_threads() -> int:
    """Threads for torch and OpenVINO in an xdist worker: the cores shared out among the workers."""
    return max(1, (os.cpu_count() or 1) // max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


def _share_cores(threads: int) -> None:
    """xdist worker: use ``threads`` (cores/workers) in OpenVINO, here and in its OpenVINO worker
    process, not every core each (torch gets the same when it is imported: pytest_collection_finish).

    With ``-n 2`` on 2 cores, two workers each running 2 torch + 2 OpenVINO threads
    oversubscribe the machine; one thread each keeps both cores busy without
    contention. Thread counts should change no result (same kernels, same per-element sums); a
    deviation seen only with more threads is registered with ``min_threads`` (expectations.py).
    """
    # Read where OpenVINO's Core is made (runtime.core): in this process if it runs OpenVINO itself
    # (--no-isolate), and in its OpenVINO worker process, which inherits it. Not made here: the
    # worker would import OpenVINO before collecting, on the way to its first item.
    os.environ[settings.CPU_THREADS_VARIABLE] = str(threads)


def pytest_collection_finish(session: pytest.Session) -> None:
    # Collection imports neither torch nor OpenVINO (the xdist controller and --collect-only
    # never need them). A run that will check cases needs both: import them now, so that
    # what is alive after this (torch, OpenVINO, the collected items) lives for the whole run
    # and moves out of the garbage collector's generations: each full collection (pytest
    # runs several at session end) then scans only what the items create (~0.3 s otherwise).
    if not session.config.option.collectonly and any(isinstance(item, CaseItem) for item in session.items):
        from . import worker
        state = session.config.stash[_STATE]
        if state.isolate:
            # The OpenVINO worker starts now and imports OpenVINO while this process imports torch.
            for environment in {tuple(sorted(target.environment().items())) for target in state.targets}:
                worker.pool().prestart(dict(environment))
        import openvino  # noqa: F401
        # The first batches render, compile and infer on the session's lane while torch is
        # imported: serially the session's items; an xdist worker's when the split scheduler
        # tells which they are (under xdist's own schedulers they are not known yet).
        indices = _own_items(session.config, len(session.items))
        state.run.start(lambda: _planned(session.items, indices))
        import torch  # noqa: F401
        _import_tail_modules(session.config)
    if hasattr(session.config, "workerinput") and session.items and not session.config.option.collectonly:
        import torch   # an xdist worker's share of the cores (any item may use torch: a fuzz campaign does)
        torch.set_num_threads(_worker_threads())
    gc.freeze()


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session: pytest.Session) -> None:
    if session.config.getoption("dist", "no") != "no" and not hasattr(session.config, "workerinput"):
        # The xdist controller, its workers just started. It imports no stage (the report is
        # report.py's, imported with the plugin): on a 2-core machine its CPU is the workers'.
        _import_tail_modules(session.config)


# Hypothesis's pytest plugin imports Hypothesis in its terminal summary, which every pytest process
# of a run reaches (a serial run, the xdist controller and each worker): measured 0.2 s on each
# process's tail, after its last item. Imported on a thread while the items run, it is off the tail.
_TAIL_MODULES = {"hypothesispytest": "hypothesis.internal.observability"}


def _import_tail_modules(config: pytest.Config, *modules: str) -> None:
    """Start importing, on a background thread, what the end of the run imports (``_TAIL_MODULES``
    of the plugins in use, and ``modules``)."""
    names = [module for plugin, module in _TAIL_MODULES.items() if config.pluginmanager.has_plugin(plugin)]
    names = [name for name in [*modules, *names] if name not in sys.modules]
    if names:
        threading.Thread(target=_import_quietly, args=(names,), name="conformance-tail-imports", daemon=True).start()


def _import_quietly(names: list[str]) -> None:
    for name in names:
        try:
            importlib.import_module(name)
        except Exception:  # noqa: BLE001 - the plugin that needs it imports it again and reports the error
            pass


def _own_items(config: pytest.Config, item_count: int) -> range:
    """Indices of the collected items this process will run, as far as known at the end of collection."""
    workerinput = getattr(config, "workerinput", None)
    if workerinput is None:
        return range(item_count)
    if not workerinput.get(xdist_split.WORKER_INPUT_KEY):
        return range(0)
    return xdist_split.share(workerinput["workerid"], workerinput["workercount"], item_count)


def _splits(config: pytest.Config) -> bool:
    """Whether this -n run's items are scheduled by ``xdist_split`` (xdist's ``load``, not opted out)."""
    chosen = config.getoption("xdist_split") or config.getini("conformance_xdist_split")
    if chosen not in ("interleaved", "xdist"):
        raise pytest.UsageError(f"ini conformance_xdist_split: {chosen!r}: must be interleaved or xdist")
    return config.getoption("dist", None) == "load" and chosen == "interleaved"


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log):
    """xdist controller: every N-th item to each worker up front (``xdist_split``), for ``--dist load``."""
    return xdist_split.make_scheduler(config, log) if _splits(config) else None


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node) -> None:
    """xdist controller: tell each worker that the split scheduler serves it (``_own_items``)."""
    if _splits(node.config):
        node.workerinput[xdist_split.WORKER_INPUT_KEY] = True


def pytest_collect_file(file_path: Path, parent: pytest.Collector):
    from .case import printable_path
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
        from .case import CaseError
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
        from . import api
        from .releases import openvino_release
        cases = api.load_cases(self.file_path, state.cases_root, memory_budget=state.load_budget)
        release = openvino_release()
        for case in cases:
            suffix = case.id.split("::", 1)[1][len(case.name):]
            for target in api.targets_for(state.targets, case):
                item = CaseItem.from_parent(self, name=f"{case.name}{suffix}[{target.id}]", case=case, target=target)
                if "slow" in case.marks:
                    item.add_marker(pytest.mark.slow)
                policy = api.item_policy(case, target, state.registry, release, run_slow=state.run_slow,
                                         memory_budget=state.memory_budget)
                if policy.skip is not None:
                    item.add_marker(pytest.mark.skip(reason=policy.skip))
                if policy.expected is not None:
                    # Only the registered kind of failure counts as expected; anything else fails.
                    # "error": OpenVINO raised (DeviceRejected: compile/infer of a valid model failed);
                    # "crashed"/"hung": the isolated worker did (told apart by api.RunSession.run_item).
                    item.registered_failure = policy.registered_failure
                    item.add_marker(pytest.mark.xfail(reason=policy.reason, strict=policy.strict,
                                                      raises=_xfail_raises(policy.registered_failure)))
                yield item


def _relative_errors(state: _Session, error: CaseError) -> CaseError:
    """``error`` (every problem of a ``CaseFileErrors``) with paths relative to the rootdir, so the
    report does not depend on where the checkout is."""
    from .case import CaseError, CaseFileErrors
    problems = error.errors if isinstance(error, CaseFileErrors) else [error]
    relative = [CaseError(state.relative(problem.path, resolve=False), problem.line, problem.field, problem.message)
                for problem in problems]
    return CaseFileErrors(relative) if isinstance(error, CaseFileErrors) else relative[0]


class InvalidCaseFile(pytest.Item):
    """Stands for a case file that could not be loaded; fails with the located message."""

    def __init__(self, *, error: CaseError, **kwargs):
        super().__init__(**kwargs)
        from .case import printable_path
        self.error = error
        state = self.config.stash[_STATE]
        self.user_properties += [("case_id", printable_path(state.relative(self.path, resolve=False))), ("target", "-"),
                                 ("op", reporting.INVALID_CASE_FILE), ("source", f"{error.path}:{error.line or 1}")]

    def runtest(self) -> None:
        raise self.error

    def repr_failure(self, excinfo, style=None) -> str:
        from .case import CaseError
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
    from . import worker
    return {"mismatch": ConformanceFailure, "error": (RuntimeError, DeviceRejected),
            "crashed": worker.WorkerFailed, "hung": worker.WorkerFailed}[kind]


class CaseItem(pytest.Item):
    """One case on one target."""

    def __init__(self, *, case: Case, target: Target, **kwargs):
        from . import api
        super().__init__(**kwargs)
        self.case = case
        self.target = target
        self.result: api.ItemResult | None = None
        self.registered_failure: str | None = None   # the registry's 'fails' for this item, if registered
        state = self.config.stash[_STATE]
        source = f"{state.relative(case.source.path)}:{case.source.line}"
        self.user_properties += [("case_id", case.id), ("target", target.id), ("op", case.op), ("source", source),
                                 ("kinds", json.dumps(api.item_kinds(case, target)))]

    def runtest(self) -> None:
        """The item, checked by the session (``api.RunSession.run_item``), mapped onto pytest."""
        from . import worker
        state = self.config.stash[_STATE]
        if state.registry_error is not None:
            raise state.registry_error
        result = self.result = state.run.run_item(self.case, self.target, registered_failure=self.registered_failure,
                                                  progress=self._progress_writer(), upcoming=lambda: _upcoming(self))
        if result.status == "unavailable":
            pytest.skip(result.message)
        if result.failure is not None:
            self.user_properties.append((_STATUS_KEY, result.status))
        if result.record is not None:
            self.user_properties.append((_RECORD_KEY, json.dumps(result.record)))
        if result.perf is not None:
            self.user_properties.append((_PERF_KEY, json.dumps(result.perf)))
        if result.per_group is not None:
            self.user_properties.append((_PER_GROUP_KEY, json.dumps(result.per_group.record())))
        if result.registry_conflict is not None:
            raise OtherWorkerFailure(result.registry_conflict)
        if result.status == "failed":
            raise ConformanceFailure(result.outcome)
        if result.status == "rejected":
            raise DeviceRejected(result.message)
        if result.status == "untrustworthy":
            raise UntrustworthyItem(result.message)
        if result.failure is not None:
            raise worker.WorkerFailed(result.failure)

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

    def repr_failure(self, excinfo, style=None) -> str:
        from . import worker
        from .case import CaseError
        if isinstance(excinfo.value, (ConformanceFailure, worker.WorkerFailed, OtherWorkerFailure, DeviceRejected,
                                      UntrustworthyItem)) and self.result is not None:
            return self.result.explain()
        if isinstance(excinfo.value, CaseError):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style=style)

    def reportinfo(self):
        return self.path, self.case.source.line - 1, f"{self.case.id} [{self.target.id}]"


def _upcoming(item: CaseItem):
    """The case items this process runs after ``item``, in order, as ``api.Planned`` (for batching):
    serially the session's items after it (already filtered by -k/deselection); under xdist the
    indices queued for this worker (xdist's ``WorkerInteractor.torun``; none if it cannot be read)."""
    items = item.session.items
    if hasattr(item.config, "workerinput"):
        indices = _xdist_queue(item.config)
    else:
        position = _positions(item.session).get(item.nodeid)
        indices = range(position + 1, len(items)) if position is not None else ()
    return _planned(items, indices)


def _planned(items: list, indices):
    """The case items of ``items`` at ``indices`` (skipped ones left out), in order, as ``api.Planned``."""
    from . import api
    for index in indices:
        if not isinstance(index, int) or not 0 <= index < len(items):
            continue
        other = items[index]
        if isinstance(other, CaseItem) and other.get_closest_marker("skip") is None:
            yield api.Planned(other.case, other.target, other.registered_failure)


def _positions(session: pytest.Session) -> dict[str, int]:
    """Each item's index in ``session.items`` (computed once per session)."""
    positions = getattr(session, "_conformance_positions", None)
    if positions is None or len(positions) != len(session.items):
        positions = {item.nodeid: index for index, item in enumerate(session.items)}
        session._conformance_positions = positions
    return positions


def _xdist_queue(config: pytest.Config) -> list:
    """Item indices xdist has queued for this worker after the current item, read defensively: its
    ``WorkerInteractor`` is not a public API, so anything unexpected means no batching."""
    try:
        interactor = next(plugin for plugin in config.pluginmanager.get_plugins()
                          if hasattr(plugin, "torun") and hasattr(plugin, "nextitem_index"))
        with interactor.torun.lock() as queue:
            queued = list(queue)
        return [interactor.nextitem_index, *queued]
    except Exception:   # noqa: BLE001 - another xdist version: batch nothing
        return []


def _item_outcome(test_report: pytest.TestReport) -> str:
    if test_report.when == "call":
        if hasattr(test_report, "wasxfail"):
            # Not skipped: a non-strict XPASS, i.e. an item registered ``intermittent`` that passed this
            # time: a pass (pytest does not fail the run either); its record keeps the registry's reason.
            return "xfailed" if test_report.skipped else "passed"
        if test_report.failed and "XPASS(strict)" in str(test_report.longrepr):
            return "xpassed"
        return test_report.outcome
    return "skipped" if test_report.skipped else "error"


class _Recorder:
    """Turns test reports into ``ItemRecord``s and writes the report at the end."""

    def __init__(self, state: _Session, config: pytest.Config):
        self.state = state
        self.in_xdist_worker = hasattr(config, "workerinput")   # the controller records and reports

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        """One record per item, from its reports (on the xdist controller, which gets them all)."""
        if not self.in_xdist_worker:
            _record(self.state, report)

    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        """A collector that failed (a broken conftest or test module: case files never do) is an
        ``error`` row in the report; under xdist the controller sees each one once, as in a serial run."""
        if report.failed and not self.in_xdist_worker:
            _record_collection_error(self.state, report)

    # First: on the xdist controller, xdist's own session end waits for the workers to exit (their
    # interpreters' teardown); the report is written while they do, not after.
    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        self.state.close()
        if self.state.records:   # none in an xdist worker: the controller records and writes the report
            document = reporting.build_report(list(self.state.records.values()), _environment(self.state))
            if self.state.results_dir is not None and len(self.state.targets) > 1:
                from . import bundles
                document["cross_target"] = bundles.summarize_differences(
                    bundles.cross_target_diffs(self.state.results_dir))
            self.state.written = report_writer.write_report(document, self.state.report_path)
            self.state.totals = document["summary"]["totals"]
            self.state.kinds = document["summary"].get("kinds", {})
        if self.in_xdist_worker or session.config.getoption("dist", "no") != "no" or (
                self.state.records and not session.config.invocation_params.plugins):
            # pytest's cleanup runs five full garbage collections over everything alive (every item's
            # report, held by the terminal reporter and, under xdist, the controller): measured 0.27 s
            # on a serial run's tail. An xdist process ends next, and so does a conformance run started
            # from the command line, so nothing here needs collecting. A run embedded in a program
            # (pytester's in-process runs pass plugins) is not frozen: the program goes on.
            gc.freeze()

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
    if record.outcome != "passed" or hasattr(report, "wasxfail"):
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
    if _PERF_KEY in properties:
        record.perf = json.loads(properties[_PERF_KEY])


def _record_collection_error(state: _Session, report: pytest.CollectReport) -> None:
    path = report.nodeid.split("::", 1)[0] or "."
    reason = re.sub(r"^\[gw\d+\] [^\n]*\n", "", (report.longreprtext or "").strip()).strip()
    state.records[report.nodeid] = reporting.ItemRecord(
        nodeid=report.nodeid, case_id=path, target_id="-", op="(collection error)", source=path,
        outcome="error", reason=reason or "collection failed")


def _environment(state: _Session) -> dict:
    return reporting.environment(state.records.values(), [target.id for target in state.targets])


def pytest_report_header(config: pytest.Config) -> list[str]:
    from .releases import openvino_release
    state = config.stash[_STATE]
    return [f"conformance: OpenVINO {openvino_release()}, targets {', '.join(t.id for t in state.targets)}, "
            f"cases {state.cases_root}"
            + (f", isolated in worker processes (time limit {state.item_timeout:g} s)" if state.isolate else ""),
            f"conformance: CPU {cpu.this_cpu().model}, oneDNN ISA features: "
            f"{' '.join(cpu.this_cpu().features) or 'none known'} (expected failures may depend on them)"]
