"""Cases on other OpenVINO releases: cached release environments, bisection, a case x release matrix.

One oracle, many runtimes. The harness, the PyTorch oracle and the comparison stay
in this process; only the runtime stage (read_model + compile + infer of the IR
rendered here) runs in a worker started with the interpreter of a *release
environment*: a venv holding one OpenVINO release and a numpy it supports,
nothing else (no torch, yaml or lxml: ``conformance.worker`` and
``conformance.runtime`` import only numpy, OpenVINO and the standard library;
arrays cross as bytes + dtype + shape, see ``worker``).

Release environments live in ``cache_root()/envs/openvino-X/`` (default
``~/.cache/ov-conformance``, or ``$XDG_CACHE_HOME/ov-conformance``; override with
``$OV_CONFORMANCE_CACHE`` or ``--cache-dir``). Each is made once, on demand:
``python -m venv --without-pip`` (pip is not copied into it: this interpreter's
pip installs into it with ``pip --python``, and pip's download cache is shared by
every environment), then ``openvino==X`` and, for releases before 2024.1 whose
metadata allows numpy 2 although they were built against numpy 1, ``numpy<2``.
A finished environment has ``ov-conformance-env.json`` (versions, install time);
a release pip cannot install leaves ``openvino-X.install-failed.txt`` (pip's
output), so a later call does not try again until ``envs prune``.

The ordered release list is pip's (``pip index versions openvino``), cached in
``cache_root()/releases.json`` for a day, or given (``A,B,C``; ``A..B`` is that
range of pip's list).

Flow for a person: a case fails on the release under test -> ``ov-conformance
bisect CASE`` names the first bad and last good release -> a registry entry in
``expected_failures.yaml`` covers that release range -> when a later release fixes
it, the item XPASSes and the run says to update the entry.
"""
from __future__ import annotations

import html
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable

CACHE_VARIABLE = "OV_CONFORMANCE_CACHE"
ENVIRONMENT_MARKER = "ov-conformance-env.json"
RELEASE_LIST_FILE = "releases.json"
RELEASE_LIST_MAX_AGE = 24 * 3600.0        # seconds before pip is asked again
PIP_TIMEOUT = 900.0                       # seconds for one environment's pip install

# Outcome of one case on one release (ReleaseOutcome.status).
PASS, MISMATCH, ERROR, CRASHED, HUNG = "pass", "mismatch", "error", "crashed", "hung"
UNAVAILABLE, UNTRUSTWORTHY, NOT_INSTALLABLE = "unavailable", "untrustworthy", "not-installable"
# A release's place in a bisection (Bisection.outcomes): relative to the newest release's failure.
GOOD, BAD, DIFFERS, SKIPPED = "pass", "bad", "differs", NOT_INSTALLABLE


# ---- releases and their order -------------------------------------------------------------------

def openvino_release() -> str:
    """The OpenVINO release, e.g. ``2026.4.1`` (what the expected-failure registry is tied to).

    Read from the installed package's metadata while openvino is not imported yet, so
    collection and the xdist controller, which run no model, do not import it (nor numpy: it lives
    here, not in ``runtime``); the same string as ``runtime.openvino_version()``'s first part
    (tests/test_parallel.py checks that).
    """
    if "openvino" not in sys.modules:
        from importlib import metadata
        try:
            return metadata.version("openvino").split("-")[0]
        except metadata.PackageNotFoundError:
            pass  # not installed as a package (a source build): ask the runtime
    from .runtime import openvino_version
    return openvino_version().split("-")[0]


def release_key(release: str):
    """Sort key of a release string (PEP 440: ``2023.0.10`` after ``2023.0.2``)."""
    try:
        from packaging.version import Version
        return (0, Version(release))
    except Exception:  # packaging missing, or not a PEP 440 version: numeric parts, then the text
        return (1, tuple(int(part) if part.isdigit() else 0 for part in re.split(r"[.\-+]", release)), release)


def sort_releases(releases: Iterable[str]) -> list[str]:
    """Releases oldest first, without duplicates."""
    return sorted(set(releases), key=release_key)


def parse_pip_index(text: str) -> list[str]:
    """The versions in ``pip index versions openvino``'s output, oldest first."""
    for line in text.splitlines():
        if line.strip().startswith("Available versions:"):
            versions = [part.strip() for part in line.split(":", 1)[1].split(",") if part.strip()]
            return sort_releases(version for version in versions if re.fullmatch(r"\d+(\.\d+)*", version))
    raise ValueError("pip index printed no 'Available versions:' line:\n" + text.strip()[-800:])


def cache_root(override: Path | str | None = None) -> Path:
    """Where release environments and the release list are cached (see the module docstring)."""
    if override:
        return Path(override).expanduser()
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "ov-conformance"


def available_releases(root: Path, refresh: bool = False,
                       runner: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> list[str]:
    """OpenVINO releases pip can install here, oldest first: cached for a day in ``root/releases.json``
    (an older cached list is used when pip cannot be asked)."""
    cached = root / RELEASE_LIST_FILE
    stored = None
    if cached.is_file():
        try:
            stored = json.loads(cached.read_text(encoding="utf-8"))
            if not refresh and time.time() - stored["fetched"] < RELEASE_LIST_MAX_AGE and stored["releases"]:
                return list(stored["releases"])
        except (ValueError, KeyError, TypeError):
            stored = None  # a damaged cache file: ask pip again
    try:
        completed = runner([sys.executable, "-m", "pip", "index", "versions", "openvino"],
                           capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.SubprocessError) as error:
        completed = subprocess.CompletedProcess([], 1, "", str(error))
    if completed.returncode != 0:
        if stored and stored.get("releases"):   # offline: an old list beats none
            print(f"pip index failed; using the release list cached {time.ctime(stored['fetched'])} ({cached})",
                  file=sys.stderr)
            return list(stored["releases"])
        raise RuntimeError(f"pip index versions openvino failed ({completed.returncode}): "
                           f"{(completed.stderr or completed.stdout).strip()[-800:]}; "
                           f"name the releases instead: --releases A,B,C")
    releases = parse_pip_index(completed.stdout)
    root.mkdir(parents=True, exist_ok=True)
    cached.write_text(json.dumps({"fetched": time.time(), "releases": releases}, indent=1), encoding="utf-8")
    return releases


def select_releases(spec: str | None, available: Callable[[], list[str]]) -> list[str]:
    """The releases ``spec`` names, oldest first.

    ``A,B,C``: exactly these (pip is not asked). ``A..B``: every release of
    ``available()`` from A to B inclusive (an end may be left out: ``..B``,
    ``A..``). ``None``: all of ``available()``.
    """
    if spec is None or spec.strip() in ("", ".."):
        return sort_releases(available())
    if ".." not in spec:
        return sort_releases(part.strip() for part in spec.split(",") if part.strip())
    low, high = (part.strip() for part in spec.split("..", 1))
    listed = sort_releases(available())
    for end in (low, high):
        if end and end not in listed:
            raise ValueError(f"release {end} is not among the known releases ({', '.join(listed)})")
    chosen = [release for release in listed
              if (not low or release_key(release) >= release_key(low))
              and (not high or release_key(release) <= release_key(high))]
    if not chosen:
        raise ValueError(f"no release in {spec}")
    return chosen


# ---- release environments ------------------------------------------------------------------------

def pip_requirements(release: str) -> list[str]:
    """What a release environment gets from pip: that OpenVINO, and numpy < 2 where its metadata
    wrongly allows numpy 2 (releases before 2024.1 were built against numpy 1)."""
    requirements = [f"openvino=={release}"]
    if release_key(release) < release_key("2024.1.0"):
        requirements.append("numpy<2")
    return requirements


class InstallFailed(Exception):
    """A release environment could not be made (pip's message, or the import check's)."""


@dataclass(frozen=True)
class ReleaseEnvironment:
    """A cached venv with one OpenVINO release."""

    release: str
    path: Path
    openvino_version: str = ""        # ov.get_version() in that environment
    numpy_version: str = ""
    install_seconds: float = 0.0      # venv + pip + import check, when it was made
    created: float = 0.0              # time.time() when it was made

    @property
    def python(self) -> str:
        """The environment's interpreter (what its workers run)."""
        return str(self.path / "bin" / "python")

    def size_bytes(self) -> int:
        """Disk use of the environment (files counted once; symlinks not followed)."""
        return directory_size(self.path)


def directory_size(path: Path) -> int:
    """Bytes used by the files under ``path`` (hard links counted once)."""
    seen, total = set(), 0
    for directory, _, files in os.walk(path):
        for name in files:
            try:
                info = os.lstat(os.path.join(directory, name))
            except OSError:
                continue
            if (info.st_dev, info.st_ino) not in seen:
                seen.add((info.st_dev, info.st_ino))
                total += info.st_blocks * 512 if hasattr(info, "st_blocks") else info.st_size
    return total


def create_environment(path: Path, requirements: list[str]) -> None:
    """The default installer: a venv without pip at ``path``, then this interpreter's pip installs into it."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(path)], check=True,
                   capture_output=True, text=True, timeout=120)
    completed = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"), "install",
         "--disable-pip-version-check", "--no-input", "--quiet", *requirements],
        capture_output=True, text=True, timeout=PIP_TIMEOUT)
    if completed.returncode != 0:
        noise = "WARNING: Location 'file://"
        output = "\n".join(line for line in (completed.stdout + completed.stderr).splitlines() if noise not in line)
        raise InstallFailed(f"pip install {' '.join(requirements)} failed (exit {completed.returncode}):\n"
                            + output.strip()[-1500:])


# Run inside the environment after pip: the worker needs exactly these imports to work.
_IMPORT_CHECK = ("import json, numpy, sys; sys.path.insert(0, sys.argv[1]); from conformance import runtime, worker; "
                 "print(json.dumps({'openvino': runtime.openvino_version(), 'numpy': numpy.__version__}))")


def import_check(path: Path) -> dict:
    """Import what a worker imports with the environment at ``path``; its OpenVINO and numpy versions."""
    package_root = str(Path(__file__).resolve().parent.parent)
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "VIRTUAL_ENV")}
    completed = subprocess.run([str(path / "bin" / "python"), "-c", _IMPORT_CHECK, package_root],
                               capture_output=True, text=True, timeout=300, env=env)
    if completed.returncode != 0:
        raise InstallFailed("the environment installed but the worker's imports fail:\n"
                            + completed.stderr.strip()[-1500:])
    return json.loads(completed.stdout.strip().splitlines()[-1])


class EnvironmentCache:
    """Release environments under ``root/envs``: made on demand, reused, listed, pruned.

    ``installer(path, requirements)`` makes the environment (default
    ``create_environment``: venv + pip); ``checker(path)`` then imports what a
    worker imports with its interpreter and returns ``{"openvino": version,
    "numpy": version}`` (default ``import_check``). Tests pass fakes.
    """

    def __init__(self, root: Path | str, installer: Callable[[Path, list[str]], None] = create_environment,
                 checker: Callable[[Path], dict] | None = None):
        self.root = Path(root)
        self.envs = self.root / "envs"
        self.installer = installer
        self.checker = checker or import_check

    def path(self, release: str) -> Path:
        """The directory of ``release``'s environment."""
        return self.envs / f"openvino-{release}"

    def failure_path(self, release: str) -> Path:
        """Where a failed install of ``release`` is remembered (pip's output)."""
        return self.envs / f"openvino-{release}.install-failed.txt"

    def get(self, release: str) -> ReleaseEnvironment | None:
        """The finished environment of ``release``, or None."""
        marker = self.path(release) / ENVIRONMENT_MARKER
        if not marker.is_file():
            return None
        try:
            stored = json.loads(marker.read_text(encoding="utf-8"))
        except ValueError:
            return None
        return ReleaseEnvironment(release, self.path(release), stored.get("openvino", ""), stored.get("numpy", ""),
                                  stored.get("install_seconds", 0.0), stored.get("created", 0.0))

    def ensure(self, release: str, retry_failed: bool = False) -> ReleaseEnvironment:
        """``release``'s environment, made now if it is not cached; ``InstallFailed`` if it cannot be.

        A release that failed before fails again at once (its remembered
        message) unless ``retry_failed``.
        """
        cached = self.get(release)
        if cached is not None:
            return cached
        failure = self.failure_path(release)
        if failure.is_file() and not retry_failed:
            raise InstallFailed(f"(remembered from an earlier attempt; `ov-conformance envs prune` forgets it)\n"
                                + failure.read_text(encoding="utf-8"))
        self.envs.mkdir(parents=True, exist_ok=True)
        final, partial = self.path(release), self.envs / f".openvino-{release}.partial-{os.getpid()}"
        shutil.rmtree(partial, ignore_errors=True)
        started = time.perf_counter()
        try:
            self.installer(partial, pip_requirements(release))
            versions = self.checker(partial)
        except (InstallFailed, subprocess.SubprocessError, OSError) as error:
            shutil.rmtree(partial, ignore_errors=True)
            message = str(error) if isinstance(error, InstallFailed) else f"{type(error).__name__}: {error}"
            failure.write_text(message + "\n", encoding="utf-8")
            raise InstallFailed(message) from None
        seconds = time.perf_counter() - started
        (partial / ENVIRONMENT_MARKER).write_text(json.dumps({
            "release": release, "openvino": versions["openvino"], "numpy": versions["numpy"],
            "requirements": pip_requirements(release), "install_seconds": round(seconds, 2),
            "created": time.time()}, indent=1), encoding="utf-8")
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)   # a venv's scripts name their directory; the interpreter link does not
        failure.unlink(missing_ok=True)
        return self.get(release)

    def list(self) -> list[ReleaseEnvironment]:
        """Cached environments, oldest release first."""
        if not self.envs.is_dir():
            return []
        found = [self.get(path.name[len("openvino-"):]) for path in self.envs.glob("openvino-*") if path.is_dir()]
        return sorted((env for env in found if env is not None), key=lambda env: release_key(env.release))

    def failed(self) -> list[str]:
        """Releases remembered as not installable."""
        suffix = ".install-failed.txt"
        return sort_releases(path.name[len("openvino-"):-len(suffix)] for path in self.envs.glob(f"openvino-*{suffix}"))

    def prune(self, releases: Iterable[str] | None = None) -> list[Path]:
        """Remove the environments of ``releases`` (default: all, with leftovers and failure notes)."""
        if not self.envs.is_dir():
            return []
        wanted = None if releases is None else set(releases)
        removed = []
        for path in sorted(self.envs.iterdir()):
            name = path.name.lstrip(".")
            release = re.sub(r"^openvino-|\.install-failed\.txt$|\.partial-\d+$", "", name)
            if wanted is not None and release not in wanted:
                continue
            if path.is_dir():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
            removed.append(path)
        return removed


def format_bytes(size: int) -> str:
    """``123456789`` -> ``117.7 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} GiB"


# ---- one case on one release ----------------------------------------------------------------------

@dataclass(frozen=True)
class ReleaseOutcome:
    """What one case did on one release."""

    release: str
    status: str                        # pass | mismatch | error | crashed | hung | unavailable | untrustworthy | not-installable
    signature: str = ""                # what "the same failure" compares (failure_signature); "" for pass
    detail: str = ""                   # the verdict, OpenVINO's message, the worker's report, pip's output
    openvino_version: str = ""         # as the release's runtime reports it
    seconds: float = 0.0               # environment (first use only) + worker start + this run
    output_digest: str = ""            # sha256 (16 hex) of the output when it ran: equal = bit-identical outputs

    @property
    def failed(self) -> bool:
        """The case ran and did not pass (a mismatch, an error, a crash or a hang)."""
        return self.status in (MISMATCH, ERROR, CRASHED, HUNG)


def failure_signature(status: str, message: str = "") -> str:
    """The class of a failure, comparable across releases.

    A mismatch is ``mismatch`` (or ``mismatch: output shape`` when the shape is
    wrong); an error is its stage and OpenVINO's reason with source locations,
    addresses and numbers blanked, and what releases word differently dropped:
    "Check '...' failed at ...:", "[CPU]", "<Type> node with name '...'",
    articles, oneDNN's "Run workload with ..." advice (``error: compile: could not create primitive descriptor for
    deconvolution forward propagation primitive``); a crash is its signal.
    """
    if status == PASS:
        return ""
    # OpenVINO's wrappers around the reason change between releases: "Check '...' failed at file:line:",
    # "[CPU]", "<Type> node with name '<name>'" (2024.2: "Destination memory is undefined"; 2025.2:
    # "[CPU] GroupConvolutionBackpropData node with name 'op' Destination ..."; 2025.4: "Check ... failed at ...").
    text = re.sub(r"Check '.*?' failed at \S+?(?::\d+)?:\s*", "", message)
    text = re.sub(r"\[[A-Z_]+\]\s*", "", text)
    text = re.sub(r"\b\w+ node with name '[^']*'\s*", "", text)
    text = re.sub(r"\S+\.(?:cpp|hpp|h|c|cc)(?::\d+)?", "<source>", text)
    text = re.sub(r"0x[0-9a-fA-F]+", "<address>", text)
    text = re.sub(r"\d+", "N", text)
    # oneDNN's advice to rerun verbosely and the articles change between releases, the reason does not
    # (2025.2: "for a deconvolution", 2025.3: "for the deconvolution ... Run workload with ...").
    text = re.sub(r"\s*Run workload with .*?(?:information\.|$)", "", text)
    text = re.sub(r"\b(?:a|an|the)\s+", "", text, flags=re.IGNORECASE)
    text = re.sub(r"\s+", " ", text).strip().rstrip(".")
    return f"{status}: {text}" if text else status


def _error_message(error: Exception) -> str:
    from .runtime import RuntimeRejected
    if isinstance(error, RuntimeRejected):
        return f"{error.stage}: {error.message}"
    return f"{type(error).__name__}: {error}"


def run_on_release(case, target, steps, environment: ReleaseEnvironment, ir_dir: Path,
                   timeout: float) -> ReleaseOutcome:
    """``case`` on ``target`` with ``environment``'s OpenVINO; the oracle (``steps``) is this process's."""
    from . import api
    from .worker import WorkerFailed
    started = time.perf_counter()
    release = environment.release
    try:
        outcome = api.check(case, target, ir_dir, steps=steps, timeout=timeout, python=environment.python)
    except api.TargetUnavailable as reason:
        return ReleaseOutcome(release, UNAVAILABLE, UNAVAILABLE, str(reason), environment.openvino_version,
                              time.perf_counter() - started)
    except api.Untrustworthy as problem:
        return ReleaseOutcome(release, UNTRUSTWORTHY, UNTRUSTWORTHY, str(problem), environment.openvino_version,
                              time.perf_counter() - started)
    except WorkerFailed as failed:
        failure = failed.failure
        status = CRASHED if failure.status == "crashed" else HUNG
        cause = failure.signal_name or (f"exit {failure.exit_code}" if status == CRASHED else "")
        return ReleaseOutcome(release, status, failure_signature(status, cause), failure.describe(),
                              environment.openvino_version, time.perf_counter() - started)
    except RuntimeError as error:   # RuntimeRejected, or OpenVINO raising outside compile/infer
        message = _error_message(error)
        return ReleaseOutcome(release, ERROR, failure_signature(ERROR, message), message,
                              environment.openvino_version, time.perf_counter() - started)
    verdict = outcome.verdict
    digest = output_digest(outcome.run.outputs or (outcome.run.output,))
    if verdict.passed:
        return ReleaseOutcome(release, PASS, "", "", outcome.run.openvino_version, time.perf_counter() - started,
                              digest)
    signature = failure_signature(MISMATCH, "" if verdict.shape_ok else "output shape")
    return ReleaseOutcome(release, MISMATCH, signature, outcome.describe(), outcome.run.openvino_version,
                          time.perf_counter() - started, digest)


def output_digest(outputs) -> str:
    """Short sha256 of the outputs' shapes and bytes: two releases with the same digest computed the same bits."""
    from .bundles import inputs_digest   # the same digest result bundles use for arrays
    return inputs_digest(*outputs)[:16]


# ---- bisection ------------------------------------------------------------------------------------

@dataclass
class Bisection:
    """Where a failure of the newest release began, over an ordered release list."""

    case: str
    target: str
    releases: list[str]                                  # the list bisected, oldest first
    results: dict[str, ReleaseOutcome] = field(default_factory=dict)   # every release tried, in release order
    newest: str | None = None                            # the newest installable release (the reference)
    bad_signature: str | None = None                     # the newest release's failure; None if it passes
    first_bad: str | None = None
    last_good: str | None = None                         # the release before first_bad among those ran, if it passed
    verdict: str = ""                                    # newest-passes | bad-throughout | found | nothing-installable
    seconds: float = 0.0

    def classify(self, outcome: ReleaseOutcome) -> str:
        """pass / bad (the newest release's failure) / differs (another failure) / not-installable."""
        if outcome.status == NOT_INSTALLABLE:
            return SKIPPED
        if outcome.status == PASS:
            return GOOD
        return BAD if outcome.signature == self.bad_signature else DIFFERS

    @property
    def ran(self) -> list[str]:
        """Releases the case ran on (installed), oldest first."""
        return [release for release in self.releases
                if release in self.results and self.results[release].status != NOT_INSTALLABLE]

    @property
    def skipped(self) -> list[str]:
        """Releases tried but not installable."""
        return [release for release in self.releases
                if release in self.results and self.results[release].status == NOT_INSTALLABLE]

    @property
    def outcomes(self) -> dict[str, str]:
        """``{release: pass | bad | differs | not-installable}`` for every release tried, oldest first."""
        return {release: self.classify(self.results[release]) for release in self.releases if release in self.results}

    @property
    def transitions(self) -> list[tuple[str, str, str, str]]:
        """``(release, next release, its outcome, next's outcome)`` wherever neighbours among the
        releases ran differ: one good->bad step if history is good-then-bad, more if not."""
        ran = self.ran
        outcomes = self.outcomes
        return [(a, b, outcomes[a], outcomes[b]) for a, b in zip(ran, ran[1:]) if outcomes[a] != outcomes[b]]

    def to_json(self) -> dict:
        """``{"case", "first_bad", "last_good", "outcomes", ...}`` (what ``bisect --json`` prints)."""
        return {
            "case": self.case, "target": self.target, "first_bad": self.first_bad, "last_good": self.last_good,
            "outcomes": self.outcomes, "verdict": self.verdict, "bad_signature": self.bad_signature,
            "newest": self.newest, "releases": self.releases, "ran": self.ran, "skipped": self.skipped,
            "transitions": [{"from": a, "to": b, "from_outcome": x, "to_outcome": y}
                            for a, b, x, y in self.transitions],
            "details": {release: {key: value for key, value in asdict(outcome).items() if key != "release"}
                        for release, outcome in self.results.items()},
            "seconds": round(self.seconds, 2),
        }

    def describe(self) -> str:
        """The same in words, with what to do next."""
        span = f"{self.releases[0]}..{self.releases[-1]}" if self.releases else "no releases"
        lines = [f"{self.case} on {self.target}: bisected over {len(self.releases)} releases ({span}); "
                 f"ran {len(self.ran)}, {self.seconds:.0f} s"]
        for release in self.releases:
            if release not in self.results:
                continue
            outcome = self.results[release]
            word = self.classify(outcome)
            first = (outcome.detail or outcome.signature or "").strip().splitlines()
            reason = outcome.signature if word in (BAD, DIFFERS) else (first[-1] if first else "")
            same = ""
            if outcome.status == MISMATCH and self.newest and release != self.newest:
                newest = self.results[self.newest]
                same = (" (bit-identical output to " if outcome.output_digest == newest.output_digest
                        else " (another output than ") + f"{self.newest}'s)"
            lines.append(f"  {release:<10} {word:<15} {reason[:140]}{same}")
        for release in self.skipped:
            lines.append(f"  {release} could not be installed; a neighbour was tried instead")
        if self.verdict == "nothing-installable":
            lines.append("no release in the list could be installed: nothing ran")
        elif self.verdict == "newest-passes":
            lines.append(f"the newest release tried ({self.newest}) passes: nothing to bisect")
        elif self.verdict == "bad-throughout":
            lines.append(f"bad on every release ran, down to the oldest ({self.first_bad}): the failure "
                         f"({self.bad_signature}) predates this range; widen --releases to find where it began")
        else:
            before = (f"last good: {self.last_good}" if self.last_good else
                      f"the release before it ({self.ran[self.ran.index(self.first_bad) - 1]}) "
                      f"fails differently, so no release in the range is known good")
            gap = self._unrun_between()
            lines.append(f"first bad: {self.first_bad}; {before}"
                         + (f" (not installable in between: {', '.join(gap)})" if gap else ""))
            lines.append(f"  failure: {self.bad_signature}")
        transitions = self.transitions
        if len(transitions) > 1 or (transitions and (transitions[0][2], transitions[0][3]) != (GOOD, BAD)):
            lines.append("history is not pass-then-bad among the releases ran; every change:")
            lines += [f"  {a} ({x}) -> {b} ({y})" for a, b, x, y in transitions]
        if self.verdict in ("found", "bad-throughout"):
            lines.append(f"next: an entry in expected_failures.yaml for this case covering releases from "
                         f"{self.first_bad} on (a PEP 440 range such as '>={self.first_bad}'); when a release "
                         f"fixes it, the item XPASSes and the run says to narrow the entry")
        return "\n".join(lines)

    def _unrun_between(self) -> list[str]:
        if not self.first_bad or not self.ran or self.ran.index(self.first_bad) == 0:
            return []
        low = self.releases.index(self.ran[self.ran.index(self.first_bad) - 1])
        high = self.releases.index(self.first_bad)
        return [release for release in self.releases[low + 1:high] if release in self.skipped]


def max_runs(count: int) -> int:
    """The most releases a bisection of ``count`` releases runs: ceil(log2(count)) + 2."""
    return math.ceil(math.log2(count)) + 2 if count > 1 else count


def bisect(releases: list[str], evaluate: Callable[[str], ReleaseOutcome], case: str = "", target: str = "",
           ) -> Bisection:
    """Find where the newest release's failure began, running ``evaluate(release)`` on O(log n) releases.

    ``releases`` oldest first. The newest installable release is run first: if
    it passes there is nothing to bisect; otherwise its failure signature is
    "bad". Then the oldest installable release: if it is bad too, the failure
    predates the range. Otherwise binary search keeps "oldest index not bad,
    newest index bad" and probes the middle; a release that cannot be
    installed (``evaluate`` returned ``not-installable``) is skipped and the
    nearest untried release between the bounds is run instead. A release that
    fails differently is "not bad" for the search and is reported as
    ``differs``. At most ``max_runs(len(releases))`` releases run.
    """
    started = time.perf_counter()
    result = Bisection(case, target, list(releases))

    def probe(index: int) -> ReleaseOutcome:
        release = releases[index]
        if release not in result.results:
            result.results[release] = evaluate(release)
        return result.results[release]

    def installed(index: int) -> bool:
        return probe(index).status != NOT_INSTALLABLE

    def finish(verdict: str) -> Bisection:
        result.verdict = verdict
        result.results = {release: result.results[release] for release in releases if release in result.results}
        result.seconds = time.perf_counter() - started
        return result

    high = len(releases) - 1
    while high >= 0 and not installed(high):
        high -= 1
    if high < 0:
        return finish("nothing-installable")
    result.newest = releases[high]
    newest = probe(high)
    if newest.status == PASS:
        return finish("newest-passes")
    result.bad_signature = newest.signature
    low = 0
    while low < high and not installed(low):
        low += 1
    if low == high or probe(low).signature == result.bad_signature:
        result.first_bad = releases[low]
        return finish("bad-throughout")
    while high - low > 1:
        middle = (low + high) // 2
        # The middle, else its nearest neighbours between the bounds, until one installs.
        order = sorted(range(low + 1, high), key=lambda index: (abs(index - middle), index))
        chosen = next((index for index in order if installed(index)), None)
        if chosen is None:
            break
        if probe(chosen).signature == result.bad_signature:
            high = chosen
        else:
            low = chosen
    result.first_bad = releases[high]
    result.last_good = releases[low] if probe(low).status == PASS else None
    return finish("found")


# ---- case selection ---------------------------------------------------------------------------------

def select_cases(case_ids: list[str], keyword: str | None, cases_root: Path, target_id: str,
                 memory_budget=None) -> list:
    """Cases named by ids/files (as ``ov-conformance render``) or directories, else every case under ``cases_root``
    but the slow (full-size) ones;
    then those whose pytest test id matches ``keyword`` (pytest's ``-k`` grammar: case-insensitive
    substrings of the item name ``name[sweep][target]``, its file name and directories)."""
    from .case import load_paths
    from .case import select
    if case_ids:
        cases = []
        for spec in case_ids:
            directory = next((path for path in (Path(spec), cases_root / spec) if path.is_dir()), None)
            if directory is None:
                cases += select(spec, cases_root, memory_budget)
                continue
            found, errors = load_paths([directory], cases_root, memory_budget=memory_budget)
            if errors:
                raise errors[0]
            cases += found
    else:   # the whole tree, as a default pytest run: without the full-size (slow) cases
        cases, errors = load_paths([cases_root], cases_root, memory_budget=memory_budget)
        if errors:
            raise errors[0]
        cases = [case for case in cases if "slow" not in case.marks]
    if keyword:
        from _pytest.mark.expression import Expression
        expression = Expression.compile(keyword)
        chosen = []
        for case in cases:
            file_part, in_file = case.id.split("::", 1)
            names = [f"{in_file}[{target_id}]", *Path(cases_root.name, file_part).parts]
            lowered = [name.lower() for name in names]
            if expression.evaluate(lambda word, *_, **__: any(word.lower() in name for name in lowered)):
                chosen.append(case)
        cases = chosen
    unique = {}
    for case in cases:
        unique.setdefault(case.id, case)
    return list(unique.values())


# ---- running over releases ----------------------------------------------------------------------------

class ReleaseRunner:
    """Runs cases on releases: environments from an ``EnvironmentCache``, one oracle per case,
    outcomes remembered per (case, release), a release's worker stopped when asked."""

    def __init__(self, cache: EnvironmentCache, target, ir_dir: Path, timeout: float = 120.0,
                 retry_failed: bool = False, log: Callable[[str], None] | None = None):
        self.cache, self.target, self.ir_dir, self.timeout = cache, target, Path(ir_dir), timeout
        self.retry_failed = retry_failed
        self.log = log or (lambda line: None)
        self._steps: dict[str, tuple] = {}
        self._outcomes: dict[tuple[str, str], ReleaseOutcome] = {}
        self.install_seconds: dict[str, float] = {}     # environments made in this run

    def environment(self, release: str) -> ReleaseEnvironment | InstallFailed:
        """The release's environment, made if needed (timed), or why it cannot be."""
        missing = self.cache.get(release) is None
        if missing:
            self.log(f"{release}: creating its environment in {self.cache.path(release)} ...")
        started = time.perf_counter()
        try:
            environment = self.cache.ensure(release, self.retry_failed)
        except InstallFailed as failure:
            self.log(f"{release}: not installable: {str(failure).strip().splitlines()[-1][:160]}")
            return failure
        if missing:
            self.install_seconds[release] = time.perf_counter() - started
            self.log(f"{release}: environment ready in {self.install_seconds[release]:.1f} s")
        return environment

    def steps(self, case) -> tuple:
        """The case's inputs and oracle output, computed once for every release."""
        if case.id not in self._steps:
            from . import api
            self._steps[case.id] = api.prepare(case)
        return self._steps[case.id]

    def outcome(self, case, release: str) -> ReleaseOutcome:
        """``case`` on ``release`` (remembered)."""
        key = (case.id, release)
        if key not in self._outcomes:
            started = time.perf_counter()
            environment = self.environment(release)
            if isinstance(environment, InstallFailed):
                outcome = ReleaseOutcome(release, NOT_INSTALLABLE, NOT_INSTALLABLE, str(environment).strip(),
                                         seconds=time.perf_counter() - started)
            else:
                outcome = run_on_release(case, self.target, self.steps(case), environment, self.ir_dir, self.timeout)
                outcome = ReleaseOutcome(outcome.release, outcome.status, outcome.signature, outcome.detail,
                                         outcome.openvino_version, time.perf_counter() - started)
            self.log(f"{release}: {case.id}: {outcome.status} ({outcome.seconds:.1f} s)")
            self._outcomes[key] = outcome
        return self._outcomes[key]

    def release_done(self, release: str) -> None:
        """Stop the release's worker (its OpenVINO holds a few hundred MB)."""
        environment = self.cache.get(release)
        if environment is not None:
            from . import worker
            worker.pool().close_python(environment.python)

    def bisect(self, case, releases: list[str]) -> Bisection:
        """``bisect`` for one case over ``releases``."""
        result = bisect(releases, lambda release: self.outcome(case, release), case.id, self.target.id)
        for release in result.ran:
            self.release_done(release)
        return result


# ---- the case x release matrix ----------------------------------------------------------------------

@dataclass
class Matrix:
    """Outcomes of cases (rows) on releases (columns, oldest first)."""

    target: str
    releases: list[str]
    cells: dict[str, dict[str, ReleaseOutcome]]          # case id -> release -> outcome
    seconds: float = 0.0
    install_seconds: dict[str, float] = field(default_factory=dict)
    cache_bytes: int = 0

    def changed(self, case_id: str, release: str) -> bool:
        """True when the cell differs from the same case on the previous installable release."""
        columns = [r for r in self.releases if not self.not_installable(r)]
        if release not in columns or columns.index(release) == 0:
            return False
        previous = columns[columns.index(release) - 1]
        row = self.cells[case_id]
        return (row[release].status, row[release].signature) != (row[previous].status, row[previous].signature)

    def not_installable(self, release: str) -> bool:
        """True when no case could run on ``release``."""
        return all(row[release].status == NOT_INSTALLABLE for row in self.cells.values()) if self.cells else False

    def changes(self) -> list[dict]:
        """Every highlighted cell: ``{case, release, before, after}``."""
        found = []
        columns = [r for r in self.releases if not self.not_installable(r)]
        for case_id, row in self.cells.items():
            for previous, release in zip(columns, columns[1:]):
                if self.changed(case_id, release):
                    found.append({"case": case_id, "release": release, "previous_release": previous,
                                  "before": row[previous].status, "after": row[release].status,
                                  "before_signature": row[previous].signature,
                                  "after_signature": row[release].signature})
        return found

    def totals(self) -> dict[str, dict[str, int]]:
        """``{release: {status: count}}``."""
        totals = {release: {} for release in self.releases}
        for row in self.cells.values():
            for release, outcome in row.items():
                totals[release][outcome.status] = totals[release].get(outcome.status, 0) + 1
        return totals

    def to_json(self) -> dict:
        """The report as JSON-ready data."""
        return {
            "target": self.target, "releases": self.releases, "seconds": round(self.seconds, 2),
            "install_seconds": {release: round(value, 2) for release, value in self.install_seconds.items()},
            "cache_bytes": self.cache_bytes, "totals": self.totals(), "changes": self.changes(),
            "cells": {case_id: {release: {key: value for key, value in asdict(outcome).items() if key != "release"}
                                for release, outcome in row.items()} for case_id, row in self.cells.items()},
        }

    def to_markdown(self) -> str:
        """A Markdown table: a row per case, a column per release; changed cells in bold with a ▲."""
        releases = self.releases
        lines = [f"# OpenVINO releases: {len(self.cells)} cases x {len(releases)} releases on {self.target}", "",
                 f"Wall time {self.seconds:.0f} s; environments made in this run: "
                 + (", ".join(f"{r} {s:.0f} s" for r, s in self.install_seconds.items()) or "none (all cached)")
                 + f"; cache {format_bytes(self.cache_bytes)}.",
                 "Cells in **bold** with ▲ changed from the previous release's column.", "",
                 "| case | " + " | ".join(releases) + " |", "|---|" + "---|" * len(releases)]
        for case_id, row in self.cells.items():
            cells = []
            for release in releases:
                text = row[release].status
                cells.append(f"**{text} ▲**" if self.changed(case_id, release) else text)
            lines.append(f"| `{case_id}` | " + " | ".join(cells) + " |")
        totals = self.totals()
        lines.append("| **totals** | " + " | ".join(
            ", ".join(f"{count} {status}" for status, count in sorted(totals[release].items()))
            for release in releases) + " |")
        changes = self.changes()
        lines += ["", f"## Changes between neighbouring releases ({len(changes)})", ""]
        lines += [f"- `{change['case']}`: {change['previous_release']} {_cell_words(change['before'], change['before_signature'])}"
                  f" -> {change['release']} {_cell_words(change['after'], change['after_signature'])}"
                  for change in changes]
        failures = sorted({(case_id, outcome.signature) for case_id, row in self.cells.items()
                           for outcome in row.values() if outcome.signature})
        if failures:
            lines += ["", "## Failure signatures", ""]
            lines += [f"- `{case_id}`: {signature}" for case_id, signature in failures]
        return "\n".join(lines) + "\n"

    def to_html(self) -> str:
        """The same table as a standalone HTML page (changed cells outlined, statuses coloured)."""
        colours = {PASS: "#d8f5d8", MISMATCH: "#f8d0d0", ERROR: "#f8e0b8", CRASHED: "#e8c0f0", HUNG: "#e8c0f0",
                   UNAVAILABLE: "#e8e8e8", UNTRUSTWORTHY: "#e8e8e8", NOT_INSTALLABLE: "#f0f0f0"}
        head = "".join(f"<th>{html.escape(release)}</th>" for release in self.releases)
        rows = []
        for case_id, row in self.cells.items():
            cells = []
            for release in self.releases:
                outcome = row[release]
                changed = self.changed(case_id, release)
                style = f"background:{colours.get(outcome.status, '#fff')}" + (";outline:3px solid #c00" if changed else "")
                title = html.escape(outcome.signature or outcome.status)
                cells.append(f'<td style="{style}" title="{title}">{html.escape(outcome.status)}'
                             f'{" &#9650;" if changed else ""}</td>')
            rows.append(f"<tr><td><code>{html.escape(case_id)}</code></td>{''.join(cells)}</tr>")
        return ("<!doctype html><meta charset='utf-8'><title>OpenVINO releases</title>"
                "<style>body{font-family:sans-serif}td,th{border:1px solid #999;padding:2px 6px;font-size:13px}"
                "table{border-collapse:collapse}</style>"
                f"<h1>{len(self.cells)} cases x {len(self.releases)} OpenVINO releases on {html.escape(self.target)}</h1>"
                f"<p>Wall time {self.seconds:.0f} s; cache {format_bytes(self.cache_bytes)}. Outlined cells (&#9650;) "
                "changed from the previous release. Hover a cell for its failure signature.</p>"
                f"<table><tr><th>case</th>{head}</tr>{''.join(rows)}</table>")

    def write(self, stem: Path | str) -> list[Path]:
        """``stem.json``, ``stem.md`` and ``stem.html``; their paths."""
        stem = Path(stem)
        stem.parent.mkdir(parents=True, exist_ok=True)
        paths = [stem.with_suffix(".json"), stem.with_suffix(".md"), stem.with_suffix(".html")]
        paths[0].write_text(json.dumps(self.to_json(), indent=1), encoding="utf-8")
        paths[1].write_text(self.to_markdown(), encoding="utf-8")
        paths[2].write_text(self.to_html(), encoding="utf-8")
        return paths


def _cell_words(status: str, signature: str) -> str:
    """``error (error: compile: ...)`` for a failure, the bare status otherwise."""
    return f"{status} ({signature})" if signature and signature != status else status


def run_matrix(runner: ReleaseRunner, cases: list, releases: list[str]) -> Matrix:
    """Every case on every release (release by release: one worker alive at a time)."""
    started = time.perf_counter()
    cells: dict[str, dict[str, ReleaseOutcome]] = {case.id: {} for case in cases}
    for release in releases:
        for case in cases:
            cells[case.id][release] = runner.outcome(case, release)
        runner.release_done(release)
    return Matrix(runner.target.id, list(releases), cells, time.perf_counter() - started,
                  dict(runner.install_seconds), directory_size(runner.cache.envs) if runner.cache.envs.is_dir() else 0)
