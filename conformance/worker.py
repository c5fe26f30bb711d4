"""Run the runtime stage in persistent worker subprocesses (environment, crash and hang isolation).

Why: ``ONEDNN_MAX_CPU_ISA`` (the CPU ISA cap) is read once when the oneDNN
library starts, so a target with an ISA cap needs a process started with that
environment; and a plugin that segfaults or never returns must cost one item,
not the whole session.

Design: one long-lived worker per distinct environment (the ``env`` overrides
plus the parent's ``os.environ``), started with ``subprocess.Popen`` in its own
session (Ctrl-C goes to the parent, which shuts workers down). The parent has
already rendered the IR; a job sends the ``RenderedIR`` (paths), the input array
and the ``Target`` over a private pipe (``multiprocessing.connection``, pickle),
the worker runs ``runtime.run`` (read_model + compile + infer) and sends back the
``RunResult`` including the output array. An exception raised by ``runtime.run``
in the worker (``TargetUnavailable``, an OpenVINO ``RuntimeError``) is re-raised
in the parent unchanged, so callers see the same behaviour as in-process; its
``__cause__`` is a ``RemoteTraceback`` with the worker-side traceback.

If the worker dies during a job (segfault, abort, ``os._exit``) the job's result
is ``WorkerFailure(status="crashed")`` with the signal or exit code and the tail
of the worker's stderr; if a job exceeds its timeout the worker is killed and the
result is ``WorkerFailure(status="hung")``. Either way the next job gets a fresh
worker. The worker exits on its own when the parent goes away.

Interface (for the plugin, api.check and the report)::

    from conformance import worker
    result = worker.run_in_worker(ir, data, target, timeout=60.0)   # RunResult | WorkerFailure
    if isinstance(result, worker.WorkerFailure):
        result.status        # "crashed" | "hung"
        result.describe()    # one paragraph: what happened, exit code/signal, stderr tail
    worker.shutdown()        # stop all workers (also registered with atexit)

**Other OpenVINO releases.** ``python=`` (on ``run_in_worker``, ``call``,
``WorkerPool.run``) starts the worker with another interpreter: a release
environment's ``bin/python`` (``conformance.releases``: a venv with one
OpenVINO release and a numpy it supports, often numpy 1.x). Such a worker gets
only this package's source on ``PYTHONPATH`` and imports nothing else of the
harness than this module and ``runtime`` (numpy, OpenVINO and the standard
library). Its messages are *portable*: every array crosses as raw bytes +
dtype string + shape (``_array_from_bytes``), since a numpy 2 pickle of an array
does not load under numpy 1 and back; large arrays go through ``.npy`` files as
always (the format is the same in every numpy). The IR crosses as its paths
(``run_rendered``), because ``RenderedIR`` lives in ``render`` (lxml).

**Forked workers.** ``WorkerPool(fork_from_zygotes=True)`` (``fork_workers_from_zygotes()`` for the
shared pool; ``ov-conformance fuzz`` turns it on) starts this interpreter's workers by forking them
from a *zygote*, one per environment: a process with numpy, OpenVINO's Python API, lxml and the
runtime stage imported but no OpenVINO Core, so a worker (and a replacement after a crash) costs a
fork instead of an interpreter start and imports (~0.4 s of CPU). The worker creates its Core after
the fork and reads its environment (an ISA cap included) as a fresh process does. Crashes, hangs and
exit codes read as with started workers (the zygote waits for its children and says how they ended).

``worker.call(function, *args, env=..., timeout=...)`` runs any importable
function in a worker (probing a capped ISA, or a deliberate segfault in tests).
``WorkerPool`` is the class behind these module-level functions, for callers
that want their own set of workers. ``needs_worker(target)`` says whether a
target can only run in a worker (it has an ISA cap).
"""
from __future__ import annotations

import atexit
import faulthandler
import io
import os
import pickle
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

# CPU_THREADS_VARIABLE: set by the pytest plugin in an xdist worker (threads per worker); the OpenVINO
# worker process then runs the CPU plugin with that many inference threads, as the xdist worker does.
from .settings import CPU_THREADS_VARIABLE, DEFAULT_TIMEOUT

if TYPE_CHECKING:  # annotations only: a release environment's worker imports this module without lxml
    from .render import RenderedIR
    from .runtime import RunResult, Target

STARTUP_TIMEOUT = 120.0        # seconds for a fresh worker to import OpenVINO and say "ready"
STDERR_TAIL_LINES = 20

CRASHED, HUNG = "crashed", "hung"



@dataclass(frozen=True)
class WorkerFailure:
    """A job that did not come back: the worker died (``crashed``) or timed out (``hung``)."""

    status: str                   # "crashed" | "hung"
    detail: str                   # e.g. "killed by signal 11 (SIGSEGV)", "no result after 60 s"
    environment: tuple[tuple[str, str], ...] = ()   # the worker's env overrides
    exit_code: int | None = None  # negative: killed by that signal (subprocess convention)
    signal_name: str | None = None
    stderr_tail: str = ""
    seconds: float = 0.0          # wall time from sending the job to detecting the failure

    def describe(self) -> str:
        """What happened, in a few lines a person can act on."""
        env = " ".join(f"{key}={value}" for key, value in self.environment)
        lines = [f"worker {self.status}: {self.detail} after {self.seconds:.1f} s"
                 + (f" (env {env})" if env else "")]
        if self.stderr_tail:
            lines += ["worker stderr (tail):", self.stderr_tail]
        return "\n".join(lines)


class RemoteTraceback(Exception):
    """The worker-side traceback of an exception re-raised in the parent (its ``__cause__``)."""

    def __str__(self) -> str:
        return self.args[0]


class WorkerFailed(Exception):
    """Raised by callers that want an exception instead of a returned ``WorkerFailure``."""

    def __init__(self, failure: WorkerFailure):
        super().__init__(failure.describe())
        self.failure = failure


def needs_worker(target: Target) -> bool:
    """True when ``target`` cannot run in this process (its environment differs)."""
    return bool(target.environment())


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


# Variables a test runner changes for every test: they change nothing a worker computes, and keying
# on them would start a new worker per item (pytest sets PYTEST_CURRENT_TEST around each test).
_VOLATILE_VARIABLES = frozenset({"PYTEST_CURRENT_TEST"})


def inherited_environment() -> dict[str, str]:
    """The parent's environment as a worker inherits it, less the variables that change per test."""
    return {key: value for key, value in os.environ.items() if key not in _VOLATILE_VARIABLES}


class _Worker:
    """One subprocess with a fixed environment, a job pipe and a stderr log file."""

    def __init__(self, environment: tuple[tuple[str, str], ...], python: str | None = None,
                 zygote: _Zygote | None = None):
        self.environment = environment
        self.python = python or sys.executable
        self.portable = is_foreign_python(python)   # another environment: portable arrays, no inherited PYTHONPATH
        self.inherited = inherited_environment()   # a worker whose parent's environment changed is replaced
        parent_end, child_end = os.pipe(), os.pipe()   # (parent reads, child writes), (child reads, parent writes)
        self.log = tempfile.TemporaryFile(prefix="ov-conformance-worker-")
        if zygote is not None:   # forked by the zygote: same environment, imports already done
            self.process = zygote.fork((child_end[0], parent_end[1], self.log.fileno()))
        else:
            self.process = subprocess.Popen(
                [self.python, "-m", "conformance.worker", str(child_end[0]), str(parent_end[1])],
                env=_process_environment(environment, self.portable), stdin=subprocess.DEVNULL, stdout=self.log,
                stderr=self.log, pass_fds=(child_end[0], parent_end[1]), start_new_session=True, close_fds=True)
        os.close(child_end[0])
        os.close(parent_end[1])
        self.receive = Connection(parent_end[0], writable=False)
        self.send = Connection(child_end[1], readable=False)
        self.started = time.perf_counter()
        self.ready_seconds: float | None = None
        self.jobs = 0

    def wait_ready(self, timeout: float) -> WorkerFailure | None:
        """Block until the worker has imported OpenVINO and created its Core."""
        outcome = self._receive(timeout, time.perf_counter())
        if isinstance(outcome, WorkerFailure):
            return outcome
        self.ready_seconds = time.perf_counter() - self.started
        return None

    def submit(self, job: tuple, timeout: float):
        """Send ``job``; return ``(ok, value)`` or a ``WorkerFailure``."""
        sent = time.perf_counter()
        try:
            self.send.send_bytes(_dumps(job, self.portable))
        except (BrokenPipeError, OSError):
            pass  # the worker is gone; _receive reports how it ended
        self.jobs += 1
        return self._receive(timeout, sent)

    def _receive(self, timeout: float, since: float):
        try:
            if self.receive.poll(timeout):
                message = self.receive.recv_bytes()
                try:
                    return pickle.loads(message)  # large arrays arrive mapped from files
                except Exception:
                    _remove_shared_files(self.process.pid)
                    raise
        except (EOFError, OSError):
            pass  # the worker closed its end: it died
        else:
            self.kill()
            return self._failure(HUNG, f"no result after {timeout:g} s; worker killed", since)
        try:
            self.process.wait(timeout=5.0)
        except subprocess.TimeoutExpired:
            self.kill()
        code = self.process.returncode
        if code is not None and code < 0:
            detail = f"killed by signal {-code} ({_signal_name(-code)})"
        else:
            detail = f"exited with code {code}"
        return self._failure(CRASHED, detail, since)

    def _failure(self, status: str, detail: str, since: float) -> WorkerFailure:
        # Files of this job that nobody will map: the dead worker's reply, and our job's inputs
        # (jobs are sent one at a time under the pool's lock).
        _remove_shared_files(self.process.pid)
        _remove_shared_files(os.getpid())
        code = self.process.returncode
        environment = self.environment + ((("python", self.python),) if self.portable else ())
        return WorkerFailure(status=status, detail=detail, environment=environment, exit_code=code,
                             signal_name=_signal_name(-code) if code is not None and code < 0 else None,
                             stderr_tail=self.stderr_tail(), seconds=time.perf_counter() - since)

    def stderr_tail(self, lines: int = STDERR_TAIL_LINES) -> str:
        self.log.flush()
        self.log.seek(0)
        text = self.log.read()[-16384:].decode("utf-8", "replace")
        return "\n".join(text.rstrip().splitlines()[-lines:])

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def close(self, grace: float = 5.0) -> None:
        """Ask the worker to exit (EOF on its job pipe); kill it if it does not."""
        for connection in (self.send, self.receive):
            try:
                connection.close()
            except OSError:
                pass
        try:
            self.process.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            self.kill()
        self.log.close()


def _process_environment(environment: tuple[tuple[str, str], ...], portable: bool) -> dict[str, str]:
    """The environment of a worker (or zygote) process: this one's plus ``environment``'s overrides, with
    this conformance package first on its path (a worktree or an install alike)."""
    env = {**os.environ, **dict(environment)}
    package_root = str(Path(__file__).resolve().parent.parent)
    if portable:
        # Only the harness source: the parent's PYTHONPATH may lead to its own numpy/OpenVINO.
        env["PYTHONPATH"] = package_root
        env[PORTABLE_VARIABLE] = "1"
        env.pop("VIRTUAL_ENV", None)
    else:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    return env


# ---- forking workers from a zygote ------------------------------------------------------------
# A new worker is an interpreter start plus numpy, OpenVINO's Python API, lxml and this package
# (~0.4 s of CPU), and a worker that crashes is replaced for the next job: a crash in a batch costs
# one replacement per crashing half of its bisection, so a fuzzing campaign starts a few workers
# per 1,000 cases. A zygote is a process with those imports done and no OpenVINO Core (so neither
# the CPU plugin, oneDNN nor their threads exist in it); it forks each worker of its environment
# on demand, and the worker creates its Core after the fork, reading the environment it inherits
# (ONEDNN_MAX_CPU_ISA included) as a fresh process would. The zygote's other threads (numpy's
# OpenBLAS pool, stopped by OpenBLAS's own fork handler; OpenVINO's telemetry sender, which the
# worker never calls) do not exist in the worker.

ZYGOTE_PRELOAD = ("conformance.runtime", "conformance.render", "conformance.batch")


def _send_message(channel: socket.socket, message, fds=()) -> None:
    socket.send_fds(channel, [pickle.dumps(message)], list(fds))


def _receive_message(channel: socket.socket):
    """(message, received fds); EOFError when the other end is gone."""
    data, fds, _, _ = socket.recv_fds(channel, 1 << 16, 8)
    if not data:
        for fd in fds:
            os.close(fd)
        raise EOFError
    return pickle.loads(data), fds


class _Zygote:
    """The zygote process of one environment (parent side): ``fork`` starts a worker from it."""

    def __init__(self, environment: tuple[tuple[str, str], ...]):
        self.inherited = inherited_environment()
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        self.log = tempfile.TemporaryFile(prefix="ov-conformance-zygote-")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "conformance.worker", "--zygote", str(theirs.fileno())],
            env=_process_environment(environment, False), stdin=subprocess.DEVNULL, stdout=self.log,
            stderr=self.log, pass_fds=(theirs.fileno(),), start_new_session=True, close_fds=True)
        theirs.close()
        self.environment = environment
        self.channel = ours
        self._replies: list = []   # fork replies not read yet, oldest first (one per forked process)
        self.adopted = False       # started by the process this one was forked from (``adopt_zygote``)

    @property
    def alive(self) -> bool:
        if self.adopted:   # not our child: there is no exit status to read here
            try:
                os.kill(self.process.pid, 0)
                return True
            except ProcessLookupError:
                return False
        return self.process.poll() is None

    def fork(self, fds: tuple[int, int, int]) -> _ForkedProcess:
        """A worker forked with ``fds`` (its job pipe's read end, its result pipe's write end, its log);
        returns at once (the zygote may still be importing): the pid is read when first needed."""
        process = _ForkedProcess(self)
        try:
            _send_message(self.channel, ("fork",), fds)
            self._replies.append(process)
        except OSError:
            process.forked(-1)   # no zygote: the worker never started (its pipes close: EOF)
            process.returncode = -1
        return process

    def request(self, message):
        """Send ``message`` and return the zygote's reply (fork replies still due are read first)."""
        self._read_fork_replies()
        _send_message(self.channel, message)
        reply, _ = _receive_message(self.channel)
        return reply

    def _read_fork_replies(self) -> None:
        while self._replies:
            process = self._replies[0]
            reply, _ = _receive_message(self.channel)
            self._replies.pop(0)
            process.forked(reply[1])

    def hand_over(self) -> None:
        """Close this process's end of the channel after forking the process that adopts the zygote."""
        self.channel.close()

    def wait(self) -> None:
        """Wait for the zygote to exit (its adopter closed the channel) and drop its log."""
        self.process.wait()
        self.log.close()

    def close(self) -> None:
        """EOF on its channel: it exits (a worker it forked exits when it sees its parent gone). An
        adopted zygote is left for the process that started it to wait for."""
        self.channel.close()
        if not self.adopted:
            try:
                self.process.wait(timeout=5.0)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


class _ForkedProcess:
    """A worker forked by a ``_Zygote``, with what ``_Worker`` uses of ``subprocess.Popen``: pid, poll,
    wait, kill, returncode (negative: killed by that signal). Its exit status is the zygote's to
    read (it is the zygote's child); a zygote that is gone reads as exit code -1."""

    def __init__(self, zygote: _Zygote):
        self.zygote = zygote
        self._pid: int | None = None
        self.returncode: int | None = None

    def forked(self, pid: int) -> None:
        self._pid = pid

    @property
    def pid(self) -> int:
        if self._pid is None:
            try:
                self.zygote._read_fork_replies()
            except (EOFError, OSError):
                self._pid = -1
        return self._pid

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None and self.pid <= 0:
            self.returncode = -1
        if self.returncode is None:
            try:
                self.returncode = self.zygote.request(("wait", self.pid, timeout))
            except (EOFError, OSError):
                self.returncode = -1
            if self.returncode is None:
                raise subprocess.TimeoutExpired(f"worker {self.pid}", timeout)
        return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        if self.poll() is None and self.pid > 0:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def _zygote_serve(channel_fd: int) -> None:
    """The zygote: import what a worker imports, then fork a worker per request (``_Zygote``) and
    say how forked workers ended, until the parent closes the channel."""
    import importlib
    for module in ZYGOTE_PRELOAD:
        importlib.import_module(module)
    from . import runtime
    runtime.openvino_api()   # the Python API only: no Core (see above)
    channel = socket.socket(fileno=channel_fd)
    statuses: dict[int, int] = {}
    while True:
        try:
            message, fds = _receive_message(channel)
        except (EOFError, OSError):
            os._exit(0)
        if message[0] == "fork":
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
            if pid == 0:
                _forked_worker(channel, fds)
            for fd in fds:
                os.close(fd)
            _send_message(channel, ("forked", pid))
        elif message[0] == "wait":
            _send_message(channel, _wait_for_child(message[1], message[2], statuses))


def _forked_worker(channel: socket.socket, fds: list[int]) -> None:
    """In a worker just forked by the zygote: its output to its log, then serve jobs; never returns."""
    code = 1
    try:
        channel.close()
        read_fd, write_fd, log_fd = fds
        os.dup2(log_fd, 1)
        os.dup2(log_fd, 2)
        os.close(log_fd)
        _serve(read_fd, write_fd)
        code = 0
    except BaseException:  # noqa: BLE001 - the worker's own failure, told in its log
        traceback.print_exc()
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


def _wait_for_child(pid: int, timeout: float | None, statuses: dict[int, int]) -> int | None:
    """The exit code of the zygote's child ``pid`` (negative: its signal) once it ends, waiting at most
    ``timeout`` seconds (None: until it ends); None if it is still running then."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while pid not in statuses:
        try:
            done, status = os.waitpid(pid, 0 if deadline is None else os.WNOHANG)
        except ChildProcessError:
            return -1
        if done:
            statuses[pid] = os.waitstatus_to_exitcode(status)
        elif time.monotonic() >= deadline:
            return None
        else:
            time.sleep(0.005)
    return statuses[pid]


class WorkerPool:
    """Workers keyed by environment; a dead or killed worker is replaced on the next job."""

    def __init__(self, startup_timeout: float = STARTUP_TIMEOUT, fork_from_zygotes: bool = False):
        """``fork_from_zygotes``: start this interpreter's workers by forking them from one zygote per
        environment (``_Zygote``: a replacement costs a fork, not an interpreter start and imports)."""
        self.startup_timeout = startup_timeout
        self.fork_from_zygotes = fork_from_zygotes
        self._workers: dict[tuple, _Worker] = {}   # key: (interpreter or None, environment overrides)
        self._starting: dict[tuple, _Worker] = {}  # started by prestart, not yet waited for
        self._zygotes: dict[tuple, _Zygote] = {}   # key: environment overrides
        self._lock = threading.Lock()
        self.spawned = 0

    def _new_worker(self, key: tuple) -> _Worker:
        python, environment = key
        zygote = None
        if self.fork_from_zygotes and python is None:
            zygote = self._zygotes.get(environment)
            if zygote is None or not zygote.alive or zygote.inherited != inherited_environment():
                if zygote is not None:
                    zygote.close()
                zygote = self._zygotes[environment] = _Zygote(environment)
        self.spawned += 1
        return _Worker(environment, python, zygote)

    def adopt_zygote(self, zygote: _Zygote) -> None:
        """Fork this pool's workers of ``zygote``'s environment from ``zygote``, started by the process
        this one was forked from (``ov-conformance fuzz --jobs N`` starts its jobs' zygotes before it
        imports torch, so they are ready when it forks the jobs); turns ``fork_from_zygotes`` on."""
        zygote.adopted = True
        with self._lock:
            self.fork_from_zygotes = True
            self._zygotes[zygote.environment] = zygote

    @staticmethod
    def _key(env: dict[str, str] | None, python: str | None) -> tuple:
        return python if is_foreign_python(python) else None, tuple(sorted((env or {}).items()))

    def prestart(self, env: dict[str, str] | None = None, python: str | None = None) -> None:
        """Start the worker for ``env`` now without waiting for it: it imports OpenVINO while the
        caller goes on (the pytest plugin imports torch meanwhile); the first job waits until it is
        ready. No-op when that worker exists or is starting."""
        key = self._key(env, python)
        with self._lock:
            if key not in self._workers and key not in self._starting:
                self._starting[key] = self._new_worker(key)

    def _worker(self, key: tuple) -> _Worker | WorkerFailure:
        worker = self._workers.get(key)
        if worker is None and key in self._starting:
            worker = self._starting.pop(key)
            if worker.inherited == inherited_environment():
                failure = worker.wait_ready(self.startup_timeout)
                if failure is not None:
                    worker.close(grace=0)
                    return failure
                self._workers[key] = worker
        if worker is not None and worker.alive and worker.inherited == inherited_environment():
            return worker
        if worker is not None:
            worker.close(grace=0)
        worker = self._new_worker(key)
        failure = worker.wait_ready(self.startup_timeout)
        if failure is not None:
            worker.close(grace=0)
            self._workers.pop(key, None)
            return failure
        self._workers[key] = worker
        return worker

    def call(self, function, *args, env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
             python: str | None = None):
        """``function(*args)`` in the worker for ``env``: its return value, or a ``WorkerFailure``.

        ``function`` must be importable by name (pickled by reference). An
        exception it raises is re-raised here. ``python``: the interpreter of
        another environment to run it in (see the module docstring); its
        arguments and result must then be made of builtins, arrays and classes
        of this module or ``runtime``.
        """
        key = self._key(env, python)
        with self._lock:
            worker = self._worker(key)
            if isinstance(worker, WorkerFailure):
                return worker
            outcome = worker.submit(("call", function, args), timeout)
            if isinstance(outcome, WorkerFailure):
                worker.close(grace=0)
                del self._workers[key]
                return outcome
        ok, value, remote_traceback = outcome
        if not ok:
            raise value from RemoteTraceback(f"in the worker (pid {worker.process.pid}):\n{remote_traceback}")
        return value

    def run(self, ir: RenderedIR, data: np.ndarray, target: Target, timeout: float = DEFAULT_TIMEOUT,
            op_name: str = "op", python: str | None = None) -> RunResult | WorkerFailure:
        """``runtime.run(ir, data, target)`` in the worker for ``target``'s environment
        (and ``python``'s, when given: another OpenVINO release)."""
        if is_foreign_python(python):
            return self.call(run_rendered, ir_files(ir), data, target, op_name, env=target.environment(),
                             timeout=timeout, python=python)
        from . import runtime
        return self.call(runtime.run, ir, data, target, op_name, env=target.environment(), timeout=timeout)

    def stats(self) -> dict:
        """Workers started so far and each live worker's startup time and job count."""
        return {"spawned": self.spawned,
                "workers": [{"environment": dict(env), "python": python or sys.executable, "pid": w.process.pid,
                             "jobs": w.jobs, "startup_seconds": w.ready_seconds}
                            for (python, env), w in self._workers.items()]}

    def close_python(self, python: str) -> int:
        """Stop the workers running ``python`` (a release environment that is done); how many stopped."""
        with self._lock:
            keys = [key for key in self._workers if key[0] == python]
            workers = [self._workers.pop(key) for key in keys]
        for worker in workers:
            worker.close()
        return len(workers)

    def shutdown(self) -> None:
        """Stop every worker (idempotent)."""
        with self._lock:
            workers, self._workers = list(self._workers.values()), {}
            starting, self._starting = list(self._starting.values()), {}
        for worker in workers:
            worker.close()
        for worker in starting:   # never used: it may still be importing OpenVINO
            worker.close(grace=0)
        with self._lock:
            zygotes, self._zygotes = list(self._zygotes.values()), {}
        for zygote in zygotes:
            zygote.close()


_POOL = WorkerPool()
atexit.register(_POOL.shutdown)


def run_in_worker(ir: RenderedIR, data: np.ndarray, target: Target,
                  timeout: float = DEFAULT_TIMEOUT, python: str | None = None) -> RunResult | WorkerFailure:
    """Run the runtime stage for ``target`` in the shared pool's worker for its environment
    (``python``: another environment's interpreter, e.g. a release environment's)."""
    if python:
        return _POOL.run(ir, data, target, timeout, python=python)
    return _POOL.run(ir, data, target, timeout)   # the signature tests replace WorkerPool.run with


def call(function, *args, env: dict[str, str] | None = None, timeout: float = DEFAULT_TIMEOUT,
         python: str | None = None):
    """``function(*args)`` in the shared pool's worker for ``env`` (see ``WorkerPool.call``)."""
    return _POOL.call(function, *args, env=env, timeout=timeout, python=python)


def is_foreign_python(python: str | None) -> bool:
    """True when ``python`` is another interpreter than this process's (another environment)."""
    if not python:
        return False
    return os.path.abspath(python) != os.path.abspath(sys.executable)


# ---- the runtime stage in another environment ---------------------------------------------------

@dataclass(frozen=True)
class IRFiles:
    """What ``runtime.run`` reads of a ``RenderedIR``, without importing ``render`` (lxml)."""

    xml_path: str
    bin_path: str
    digest: str
    input_name: str
    element_type: str
    input_types: tuple[tuple[str, str], ...]   # (name, element type) of every runtime input


def ir_files(ir: RenderedIR) -> IRFiles:
    """``ir`` as absolute paths and names, for a worker in another environment."""
    return IRFiles(str(Path(ir.xml_path).resolve()), str(Path(ir.bin_path).resolve()), ir.digest,
                   ir.input_name, ir.element_type, ir.input_types)


def run_rendered(ir: IRFiles, data, target: Target, op_name: str = "op") -> RunResult:
    """``runtime.run`` on an IR given by its files (the job of a release environment's worker)."""
    from . import runtime
    return runtime.run(ir, data, target, op_name)


def planned_inference_threads() -> int:
    """How many CPU inference threads this process's OpenVINO runs with: ``CONFORMANCE_CPU_THREADS``
    when set (``pytest -n N`` sets it per worker), else OpenVINO's default, one per core this process
    may use (read without starting OpenVINO, so registry matching at collection stays cheap)."""
    if os.environ.get(CPU_THREADS_VARIABLE):
        return int(os.environ[CPU_THREADS_VARIABLE])
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def cpu_inference_threads() -> int:
    """This process's CPU ``INFERENCE_NUM_THREADS`` (call it in a worker: ``call(cpu_inference_threads)``)."""
    from .runtime import core
    return int(core().get_property("CPU", "INFERENCE_NUM_THREADS"))


def start_zygote(env: dict[str, str] | None = None) -> _Zygote:
    """A zygote for workers of this interpreter with ``env``'s overrides, not used by this process: for
    a process forked from this one to take (``WorkerPool.adopt_zygote``). ``close`` it here once forked
    (the child keeps its channel), and wait for its process when the child is done."""
    return _Zygote(tuple(sorted((env or {}).items())))


def fork_workers_from_zygotes(enabled: bool = True) -> None:
    """Start the shared pool's workers (this interpreter's) by forking them from a zygote per
    environment (``WorkerPool(fork_from_zygotes=True)``); ``ov-conformance fuzz`` does."""
    _POOL.fork_from_zygotes = enabled


def pool() -> WorkerPool:
    """The shared pool used by ``run_in_worker`` and ``call``."""
    return _POOL


def shutdown() -> None:
    """Stop the shared pool's workers (session end; also runs at interpreter exit)."""
    _POOL.shutdown()


# ---- large arrays travel through files, not the pipe -------------------------------------------
# Pickling a 3 GB output through a pipe costs two extra copies on each side. Arrays of at least
# SHARED_FILE_BYTES are written once to a file in /dev/shm (RAM-backed; the temp dir if it is too
# small) and the receiver maps it copy-on-write, then unlinks it: the mapping outlives the name.
# Measured with benchmarks/worker_overhead.py.

SHARED_FILE_BYTES = 32 * 2 ** 20
_SHARED_PREFIX = "ov-conformance-array-"


def _shared_directory(size: int) -> str:
    try:
        free = os.statvfs("/dev/shm")
        if free.f_bavail * free.f_frsize > 2 * size:
            return "/dev/shm"
    except OSError:
        pass
    return tempfile.gettempdir()


def _map_shared(path: str) -> np.ndarray:
    """Receiver side: map the array file (copy-on-write, so the result is writable) and unlink it."""
    try:
        return np.load(path, mmap_mode="c")
    finally:
        os.unlink(path)


# Set in a worker started with another interpreter: its replies carry portable arrays too.
PORTABLE_VARIABLE = "OV_CONFORMANCE_PORTABLE_ARRAYS"


def _array_from_bytes(data: bytes, dtype: str, shape: tuple[int, ...]) -> np.ndarray:
    """Receiver side of a portable array: the same in numpy 1 and 2 (a writable copy)."""
    return np.frombuffer(bytearray(data), dtype=np.dtype(dtype)).reshape(shape)


def _scalar_from_bytes(data: bytes, dtype: str):
    """Receiver side of a portable numpy scalar."""
    return np.frombuffer(data, dtype=np.dtype(dtype))[0]


class _Pickler(pickle.Pickler):
    """Large arrays through files; with ``portable``, every array and numpy scalar as bytes + dtype + shape."""

    def __init__(self, file, portable: bool = False):
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.portable = portable

    def reducer_override(self, obj):
        kind = type(obj)
        if kind in (np.ndarray, np.memmap) and obj.dtype != object:
            if obj.nbytes >= SHARED_FILE_BYTES:
                handle, path = tempfile.mkstemp(prefix=f"{_SHARED_PREFIX}{os.getpid()}-", suffix=".npy",
                                                dir=_shared_directory(obj.nbytes))
                with os.fdopen(handle, "wb") as file:
                    np.save(file, obj, allow_pickle=False)
                return _map_shared, (path,)
            if self.portable:
                return _array_from_bytes, (np.ascontiguousarray(obj).tobytes(), obj.dtype.str, tuple(obj.shape))
        elif self.portable and isinstance(obj, np.generic) and obj.dtype != object:
            return _scalar_from_bytes, (obj.tobytes(), obj.dtype.str)
        return NotImplemented


def _dumps(obj, portable: bool = False) -> bytes:
    buffer = io.BytesIO()
    _Pickler(buffer, portable).dump(obj)
    return buffer.getvalue()


def _remove_shared_files(pid: int) -> None:
    """Array files a dead worker wrote but nobody mapped."""
    for directory in {"/dev/shm", tempfile.gettempdir()}:
        for path in Path(directory).glob(f"{_SHARED_PREFIX}{pid}-*.npy"):
            path.unlink(missing_ok=True)


# ---- the worker process ------------------------------------------------------------------------

def _exit_with_parent(parent: int) -> None:
    """A worker stuck in a job would outlive a killed parent: watch for re-parenting."""
    while True:
        time.sleep(1.0)
        if os.getppid() != parent:
            os._exit(3)


def _picklable(error: BaseException) -> BaseException:
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:  # pybind-made exception types may not round-trip
        return RuntimeError(f"{type(error).__name__}: {error}")


def _serve(read_fd: int, write_fd: int) -> None:
    jobs, results = Connection(read_fd, writable=False), Connection(write_fd, readable=False)
    faulthandler.enable(all_threads=False)  # a native crash leaves the Python stack in the stderr tail
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()
    portable = os.environ.get(PORTABLE_VARIABLE) == "1"
    from . import runtime
    runtime.core()  # load the plugins now (and set CONFORMANCE_CPU_THREADS), so startup cost is not charged to the first job
    results.send_bytes(pickle.dumps(("ready", os.getpid())))
    while True:
        try:
            kind, function, args = pickle.loads(jobs.recv_bytes())
        except EOFError:
            return
        try:
            reply = (True, function(*args), None)
        except Exception as error:  # the parent re-raises it, with this traceback as its cause
            reply = (False, _picklable(error), traceback.format_exc())
        try:
            message = _dumps(reply, portable)
        except Exception as error:  # e.g. no space left for a large output
            message = _dumps((False, RuntimeError(f"cannot send the result back: {error}"), traceback.format_exc()),
                             portable)
        results.send_bytes(message)


if __name__ == "__main__":
    # Run the imported module's _serve, not this __main__ copy's: what the worker pickles
    # (e.g. the mapped-file loader) must be found as conformance.worker.* by the parent.
    if sys.argv[1] == "--zygote":
        from conformance.worker import _zygote_serve
        _zygote_serve(int(sys.argv[2]))
    from conformance.worker import _serve as serve
    serve(int(sys.argv[1]), int(sys.argv[2]))
    # The parent closed the job pipe: it is done with this worker and waits for it to exit. Exit
    # without the interpreter's teardown, as a forked worker does: destroying OpenVINO's Core,
    # plugins and cached compiled models took ~0.2 s, on the tail of every isolated session.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)
