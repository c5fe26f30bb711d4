"""A fuzzing campaign: generate valid cases, run them on targets, classify, dedup, shrink, write.

    from conformance.fuzzing import campaign
    result = campaign.run_campaign(campaign.Settings(seed=1, max_cases=200, targets=[...]))
    campaign.write_findings(result, "findings/")

Each case is a case-file document (``strategies.document``) loaded with
``load_cases_document`` (the finding files are its YAML dump, ``load_params``). Cases are
drawn in groups of ``Settings.batch_size``; per target, a group's batchable cases (equal
``batch.batch_key``, not ``likely_rejected``) run as one model (``run_batch_with_openvino``:
``batch.run_batch`` in a worker, each member compared as ``api.check`` does), the others
alone through ``api.check`` (``run_with_openvino``; isolated in a worker process: a crash is
``crashed``, an overrun ``hung``). A case failing inside a batch runs again alone and that
outcome stands; if it passes alone, the case fails only inside a batch (``BATCH_ONLY``), a
finding of its own kind kept with its batch's members. A failure's signature is
(op, target, failure class, primitive, attribute classes): the failure class is
``mismatch`` (``mismatch: output shape``), OpenVINO's normalised error
(``releases.failure_signature``), ``crashed: SIGNAL`` or ``hung``. Findings are deduped by
signature, looked up in the registry (``expectations.match_signature``: known means
matched by an entry's signature), and minimised by ``shrink.shrink`` keeping the signature.

Generation is steered: each case is the least covered of a few candidates drawn from the
seeded ``random.Random``, where coverage counts the cases drawn per (op, target, attribute
class key=value) (never outcomes: the sequence is the seed's alone, batched or not); the
summary lists the primitives reached per op x target and per class.
"""
from __future__ import annotations

import hashlib
import json
import random
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

import yaml

from ..case import CaseError, load_cases_document, load_cases_text
from ..expectations import FindingSignature, load_registry, match_signature, release_of, target_features
from ..releases import failure_signature
from . import shrink as shrinking
from . import strategies

CANDIDATES_PER_DRAW = 3
DEFAULT_IR_DIR = ".conformance/fuzz-ir"
# Cases drawn per group. A group's batchable cases are split by batch key (element type, static or
# sequence), so small groups leave many keys with one case, which then compiles alone: of 1,536 drawn
# cases (seed 1), 181 were alone in their key with groups of 32, 29 with 96.
DEFAULT_BATCH_SIZE = 96


@dataclass(frozen=True)
class RunOutcome:
    """One case on one target: how it ended, and what ran."""

    status: str                      # pass | mismatch | error | crashed | hung | unavailable | untrustworthy
    failure_class: str = ""          # e.g. "mismatch", "error: compile: ...", "crashed: SIGFPE"
    primitive: str | None = None
    precision: str | None = None
    message: str = ""
    batch_size: int = 0              # > 1: ran in one model with batch_size - 1 other cases; 0: alone

    @property
    def failed(self) -> bool:
        """True for a deviation: a wrong output, an error, a crash or a hang."""
        return self.status in ("mismatch", "error", "crashed", "hung")


def run_with_openvino(case, target, steps=None, ir_dir: str | Path = DEFAULT_IR_DIR,
                      timeout: float = 60.0) -> RunOutcome:
    """``api.check`` of ``case`` on ``target`` in an isolated worker, reduced to a ``RunOutcome``."""
    from .. import api
    return _outcome_of(lambda: api.check(case, target, ir_dir, steps=steps, isolate=True, timeout=timeout))


def run_batch_with_openvino(members: list, target, ir_dir: str | Path = DEFAULT_IR_DIR,
                            timeout: float = 60.0) -> list[RunOutcome]:
    """``members`` ((case, steps) pairs of equal ``batch.batch_key``; a dynamic case's steps are its
    sequence of inferences) as one model on
    ``target`` (``batch.run_batch`` in an isolated worker: a crash, hang or rejection is bisected
    to its culprit, which runs alone), each member compared with its own reference as
    ``api.check`` does; one ``RunOutcome`` per member, in order (``batch_size`` > 1 when the
    member's output came from the batch model, 0 when it ran alone)."""
    from .. import api, batch
    results = batch.run_batch([batch.member(case, steps[0].inputs, [step.inputs for step in steps])
                               for case, steps in members], target, ir_dir, isolate=True, timeout=timeout)
    return [_outcome_of(lambda: api.check(case, target, ir_dir, steps=steps, runner=api.given_result(result)))
            for (case, steps), result in zip(members, results)]


def _outcome_of(check: Callable) -> RunOutcome:
    """What ``check()`` (an ``api.check`` call) ended with, as a ``RunOutcome``."""
    from .. import api
    try:
        outcome = check()
    except api.TargetUnavailable as reason:
        return RunOutcome("unavailable", message=str(reason))
    except api.Untrustworthy as problem:
        return RunOutcome("untrustworthy", message=str(problem))
    except api.WorkerFailed as failed:
        failure = failed.failure
        cause = failure.signal_name or (f"exit {failure.exit_code}" if failure.status == "crashed" else "")
        return RunOutcome(failure.status, failure_signature(failure.status, cause), message=failure.describe())
    except api.RuntimeRejected as error:
        message = f"{error.stage}: {error.message}"
        return RunOutcome("error", failure_signature("error", message), message=message)
    run = outcome.run
    size = run.extra.get("batch", {}).get("size", 0)
    if outcome.verdict.passed:
        return RunOutcome("pass", primitive=run.primitive_type, precision=run.compute_precision, batch_size=size)
    kind = "mismatch" if outcome.verdict.shape_ok else "mismatch: output shape"
    return RunOutcome("mismatch", kind, run.primitive_type, run.compute_precision, outcome.describe(), size)


Runner = Callable[..., RunOutcome]   # (case, target, steps=None) -> RunOutcome
BatchRunner = Callable[..., list]    # ([(case, steps), ...], target) -> [RunOutcome, ...]
REJECTED = ("error", "crashed", "hung")
REJECTED_AT_LEAST = 3
# The share of a class's runs rejected for its cases to run alone. Classes that merely co-occur with a
# rejected one sit near half (BackpropData bf16 or output_shape_size beside GROUPS=1): at 1/2 they made
# a third of the cases run alone, most of which then passed (seed 1, 1,000 cases: 240 alone, 133 of them
# errors); at 3/4, 153 alone, 132 errors.
REJECTED_SHARE = 3 / 4
BATCH_ONLY = "batch-only"            # the failure kind of a case that fails inside a batch and passes alone


@dataclass
class Settings:
    """What a campaign explores and how long: seed, budget, ops, targets, the registry."""

    seed: int = 1
    max_cases: int | None = None
    time_budget: float | None = None   # seconds for the whole campaign, shrinking included
    ops: tuple[str, ...] = strategies.DEFAULT_OPS
    targets: tuple = ()
    registry: str | Path | None = "expected_failures.yaml"
    shrink_checks: int = 60            # runs per finding at most while shrinking
    shrink_share: float = 0.3          # of time_budget kept for shrinking
    # Known findings (a registry entry matches) are not shrunk unless asked: the registry's case is
    # their minimal repro already, and shrinking hundreds of known signatures is most of a campaign.
    shrink_known: bool = False
    timeout: float = 60.0
    batch_size: int = DEFAULT_BATCH_SIZE   # cases drawn and run together per target; 1: one model per case
    progress: Callable[[str], None] | None = None
    progress_every: float = 15.0


@dataclass
class Finding:
    """A distinct failure signature: its (minimal) case parameters and how often it was hit."""

    op: str
    target: str
    failure: str                     # mismatch | error | crashed | hung
    failure_class: str
    primitive: str | None
    attributes: dict
    params: dict                     # the first case that hit it, minimised by shrinking
    hits: int = 1
    first_case: int = 0              # index of the first case in the campaign
    message: str = ""
    precision: str | None = None
    known: str | None = None         # the registry entry's source (file:line) when matched by signature
    shrunk: bool = False
    shrink_checks: int = 0
    seed: int = 0
    batch_members: list | None = None   # batch-only: [op, params] of every case of the batch it failed in
    batch_position: int = 0             # batch-only: this case's place in batch_members

    @property
    def batch_only(self) -> bool:
        """True when the case fails only inside a batch (alone it passes)."""
        return self.batch_members is not None

    @property
    def key(self) -> tuple:
        """The dedup key: op, target, failure class, primitive, attribute classes."""
        return (self.op, self.target, self.failure_class, self.primitive or "",
                tuple(sorted(self.attributes.items())))

    def signature(self) -> FindingSignature:
        """The registry's view of this finding (its message class is the failure class)."""
        return FindingSignature(self.op, self.failure, self.target, self.primitive, self.attributes,
                                self.failure_class)

    def slug(self) -> str:
        """A short, stable file name: op, failure kind, target and a digest of the signature."""
        digest = hashlib.sha256(json.dumps(self.key).encode()).hexdigest()[:10]
        op = "".join(letter for letter in self.op if letter.isupper()).lower()   # GroupConvolution -> gc
        return f"{op}-{BATCH_ONLY if self.batch_only else self.failure}-{self.target.lower()}-{digest}"

    def to_json(self) -> dict:
        """All fields, JSON-ready."""
        return {key: getattr(self, key) for key in self.__dataclass_fields__}


@dataclass
class CampaignResult:
    """What a campaign did and found."""

    seed: int
    cases: int = 0
    runs: int = 0
    seconds: float = 0.0
    explore_seconds: float = 0.0     # of seconds, before shrinking began
    statuses: Counter = field(default_factory=Counter)
    primitives: dict = field(default_factory=lambda: defaultdict(Counter))     # "op x target" -> primitive counts
    class_primitives: dict = field(default_factory=lambda: defaultdict(set))   # "op target k=v" -> primitives
    findings: dict = field(default_factory=dict)                               # key -> Finding
    openvino_version: str = ""
    cpu: str = ""
    targets: tuple = ()

    @property
    def rate(self) -> float:
        """Cases per second over the whole campaign."""
        return self.cases / self.seconds if self.seconds else 0.0

    @property
    def explore_rate(self) -> float:
        """Cases per second while exploring (drawing, running, comparing; shrinking left out)."""
        return self.cases / self.explore_seconds if self.explore_seconds else 0.0

    def rate_line(self) -> str:
        """The final line: cases, seconds and the rate, with exploration and shrinking apart."""
        return (f"{self.cases} cases in {self.seconds:.1f} s: {self.rate:.2f} cases/s (exploring "
                f"{self.explore_seconds:.1f} s: {self.explore_rate:.2f} cases/s; shrinking "
                f"{len(self.findings)} findings: {self.seconds - self.explore_seconds:.1f} s)")

    def new_findings(self) -> list[Finding]:
        """Findings no registry entry's signature covers."""
        return [finding for finding in self.findings.values() if finding.known is None]

    def to_json(self) -> dict:
        """Summary and findings, JSON-ready (``merge`` reads it back)."""
        return {"seed": self.seed, "cases": self.cases, "runs": self.runs, "seconds": self.seconds,
                "explore_seconds": self.explore_seconds,
                "rate": self.rate, "statuses": dict(self.statuses), "openvino_version": self.openvino_version,
                "cpu": self.cpu, "targets": list(self.targets),
                "primitives": {key: dict(value) for key, value in sorted(self.primitives.items())},
                "class_primitives": {key: sorted(value) for key, value in sorted(self.class_primitives.items())},
                "findings": [finding.to_json() for finding in self.findings.values()]}


def load_params(op: str, params: dict, name: str = "fuzz_case"):
    """The ``Case`` for ``params`` (``CaseError`` when the loader refuses it), and its YAML text."""
    text = document_text(op, params, name)
    [case] = load_cases_text(text, _document_path(name), memory_budget="1GiB")
    return case, text


# libyaml's emitter when PyYAML has it: ~4x faster (0.2 ms a finding's document instead of 0.86 ms; the
# parent of --jobs writes every finding file after the last job ends) and the same text
# (tests/test_fuzz.py compares both over drawn documents).
_SAFE_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)


def document_text(op: str, params: dict, name: str = "fuzz_case") -> str:
    """The case-file YAML text of ``params`` (what ``load_params`` loads), without loading it."""
    return yaml.dump(strategies.document(op, params, name), Dumper=_SAFE_DUMPER, sort_keys=False,
                     default_flow_style=None)


def load_case(op: str, params: dict, name: str = "fuzz_case"):
    """The ``Case`` ``load_params`` gives, without the YAML text (writing and parsing it cost ~10 ms a
    case, most of what drawing a case costs); ``CaseError`` when the loader refuses it."""
    [case] = load_cases_document(strategies.document(op, params, name), _document_path(name), memory_budget="1GiB")
    return case


def _document_path(name: str) -> str:
    return f"fuzz/{name}.yaml"


def draw_case(rng: random.Random, op: str, attempts: int = 50):
    """A valid, small parameter dict for ``op`` and its ``Case``, drawn from ``rng``."""
    generate = strategies.GENERATORS[op]
    for _ in range(attempts):
        params = generate(rng)
        try:
            case = load_case(op, params)
        except CaseError:
            continue
        if strategies.size_ok(case):
            return params, case
    raise RuntimeError(f"no valid {op} case in {attempts} draws")


class Campaign:
    """The state of one campaign: coverage, findings, and the runner it uses."""

    def __init__(self, settings: Settings, runner: Runner | None = None, batch_runner: BatchRunner | None = None):
        """``runner`` / ``batch_runner``: OpenVINO by default (``run_with_openvino``,
        ``run_batch_with_openvino``); a given ``runner`` (a fake runtime in tests) without a
        ``batch_runner`` runs a batch as its members one by one, each marked as batched."""
        self.settings = settings
        # The oracle is computed once per case for every target (OpenVINO runner); a given runner
        # (a fake runtime in tests) is called with steps=None and does what it needs.
        self.uses_oracle = runner is None
        self.runner = runner or (lambda case, target, steps=None: run_with_openvino(
            case, target, steps, timeout=settings.timeout))
        if batch_runner is None and runner is None:
            batch_runner = lambda members, target: run_batch_with_openvino(members, target, timeout=settings.timeout)
        self.batch_runner = batch_runner or (lambda members, target: [
            replace(runner(case, target, steps=steps), batch_size=len(members)) for case, steps in members])
        self.rng = random.Random(settings.seed)
        self.coverage: Counter = Counter()
        # Runs and rejections (error, crash, hang) per (op, target, class key, value): a case of a class
        # that is mostly rejected runs alone, since in a batch it would only cost a bisection.
        self.class_runs: Counter = Counter()
        self.class_rejections: Counter = Counter()
        self.result = CampaignResult(settings.seed, targets=tuple(target.id for target in settings.targets))
        self.entries = load_registry(settings.registry) if settings.registry else []
        self.features = {target.id: target_features(target.isa) for target in settings.targets}
        self._registry_rejects: dict = {}   # (op, target id, classes) -> registry_rejects (registry fixed)
        # id(case) -> (case, its api.prepare steps), made by next_case for a case it drew (ReLU/Clamp post-ops)
        # and taken by _prepare when the case runs: the oracle is computed once per drawn case.
        self._drawn_steps: dict = {}
        from ..cpu import this_cpu
        self.result.cpu = this_cpu().describe()
        try:
            from ..runtime import openvino_version
            self.result.openvino_version = openvino_version()
        except Exception:  # noqa: BLE001 - no OpenVINO (a fake runner in tests): the registry gets ""
            self.result.openvino_version = ""
        self.release = release_of(self.result.openvino_version)

    def _score(self, op: str, params: dict) -> int:
        classes = strategies.attribute_class(op, params)
        return sum(self.coverage[(op, target, key, value)]
                   for target in self.result.targets for key, value in classes.items())

    def next_case(self):
        """The least covered of a few drawn candidates that loads, is small, has outputs kernel taps
        reach enough of for the trust check (``strategies.reaches_enough``: a case it refuses would run
        for nothing) and ReLU/Clamp post-ops that leave the op visible
        (``strategies.post_ops_keep_the_op_visible``): (op, params, case). Its classes count as covered
        on every target at once, so the sequence of cases depends on the seed alone, never on outcomes
        or on how cases are grouped into batches."""
        op = self.rng.choice(self.settings.ops)
        generate = strategies.GENERATORS[op]
        for _ in range(50):
            drawn = [generate(self.rng) for _ in range(CANDIDATES_PER_DRAW)]
            # Only the chosen candidate is loaded and checked (both cost more than drawing); the next
            # one only when it fails; first of equals first: stable.
            for params in sorted(drawn, key=lambda params: self._score(op, params)):
                try:
                    case = load_case(op, params)
                except CaseError:
                    continue
                if not (strategies.size_ok(case) and strategies.reaches_enough(case)):
                    continue
                # The oracle drawing needs is the one the case runs with (its inputs come from its own seed).
                steps = self._prepare(case) if strategies.needs_the_oracle_to_draw(case) else None
                if strategies.post_ops_keep_the_op_visible(case, steps):
                    for target in self.result.targets:   # the targets' ids
                        for key, value in strategies.attribute_class(op, params).items():
                            self.coverage[(op, target, key, value)] += 1
                    if steps is not None:
                        self._drawn_steps[id(case)] = (case, steps)   # the case kept: its id stays its own
                    return op, params, case
        raise RuntimeError(f"no valid {op} case in 50 draws")

    def _prepare(self, case):
        """``api.prepare(case)`` (inputs and oracle; None with a given runner), or the steps
        ``next_case`` made for this case when it drew it (taken: each is used once)."""
        if not self.uses_oracle:
            return None
        drawn = self._drawn_steps.pop(id(case), None)
        if drawn is not None and drawn[0] is case:
            return drawn[1]
        from ..api import prepare
        return prepare(case)

    def run_group(self, group: list, first: int) -> None:
        """Run ``group`` ((op, params, case) triples; the first is campaign case ``first``) on every
        target (``outcomes_on``); record primitives and findings per case, in case order."""
        steps = [self._prepare(case) for _, _, case in group]
        outcomes = {target.id: self.outcomes_on(target, group, steps) for target in self.settings.targets}
        for position, (op, params, case) in enumerate(group):
            for target in self.settings.targets:
                outcome, positions = outcomes[target.id][position]
                context = None if positions is None else \
                    ([[group[p][0], group[p][1]] for p in positions], positions.index(position))
                self._account(op, params, target, outcome, first + position, context)

    def outcomes_on(self, target, group: list, steps: list) -> list[tuple[RunOutcome, list[int] | None]]:
        """Each case of ``group`` ((op, params, case) triples, ``steps`` their ``_prepare``) on
        ``target``: the batchable ones (equal ``batch.batch_key``, not ``likely_rejected``) as one
        model, the others one by one; a case failing in a batch is re-run alone (``_alone``). One
        (outcome, positions of its batch when it fails only inside that batch, else None) per case."""
        from ..batch import batch_key
        outcomes: list = [None] * len(group)
        batches = defaultdict(list)
        # No trust check here: api.check makes it for every case, alone or from a batch, before it
        # compares (an untrustworthy case ends so either way; the campaign draws few: reaches_enough).
        for position, ((op, params, case), case_steps) in enumerate(zip(group, steps)):
            key = batch_key(case, target)
            if key is None or self.settings.batch_size <= 1 or self.likely_rejected(op, params, target):
                outcomes[position] = (self.runner(case, target, steps=case_steps), None)
            else:
                batches[key].append(position)
        for positions in batches.values():
            if len(positions) == 1:
                outcomes[positions[0]] = (self.runner(group[positions[0]][2], target, steps=steps[positions[0]]), None)
                continue
            results = self.batch_runner([(group[p][2], steps[p]) for p in positions], target)
            for position, outcome in zip(positions, results):
                if outcome.failed and outcome.batch_size > 1:
                    outcome = self._alone(group[position][2], target, steps[position], outcome)
                outcomes[position] = (outcome, positions if outcome.status == BATCH_ONLY else None)
        return outcomes

    def likely_rejected(self, op: str, params: dict, target) -> bool:
        """True when a registry entry expects the case's op and attribute classes on ``target`` to be
        rejected (``registry_rejects``), or when one of its attribute classes was rejected (error, crash,
        hang) on ``target`` at least ``REJECTED_AT_LEAST`` times and in at least ``REJECTED_SHARE`` of its
        runs so far: such a case runs alone. (A rejected member costs its batch a bisection: ~2 log2(size)
        more compiles, and a crashing one a new worker per crashing half.) Its outcome is the same
        either way (a bisected member ends as a lone per-case run); only the chance to see it fail
        inside a batch is given up."""
        classes = strategies.attribute_class(op, params)
        if self.registry_rejects(op, classes, target):
            return True
        for key, value in classes.items():
            rejected, runs = self.class_rejections[op, target.id, key, value], self.class_runs[op, target.id, key, value]
            if rejected >= REJECTED_AT_LEAST and rejected >= REJECTED_SHARE * runs:
                return True
        return False

    def registry_rejects(self, op: str, classes: dict, target) -> bool:
        """True when a registry entry with ``fails: error`` covers ``op`` and the attribute classes
        ``classes`` on ``target`` (``ExpectedFailure.expects_of_classes``). Before a campaign has seen
        enough runs of a class, this is what tells that its cases are rejected: the first group of a
        campaign otherwise spends most of its compiles bisecting (seed 1000, 1,000 cases: 19 of the 25
        rejected batch members came in the first group; 56 of 173 batch compiles were rejected, none
        with this). Of the cases these entries cover there, 187 of 200 were rejected. The crash entries
        are left out: their signatures are broad (1 of 63 cases they covered crashed)."""
        key = (op, target.id, tuple(sorted(classes.items())))
        if key not in self._registry_rejects:
            features = self.features.get(target.id)
            self._registry_rejects[key] = any(
                entry.fails == "error" and entry.expects_of_classes(op, target.id, classes, self.release, features)
                for entry in self.entries)
        return self._registry_rejects[key]

    def _alone(self, case, target, steps, in_batch: RunOutcome) -> RunOutcome:
        """A case that failed inside a batch, run again alone (its own IR): the alone outcome stands
        when it fails too (findings, signatures and shrinking stay per case); when it passes, the
        case fails only inside a batch, a finding of its own kind (``BATCH_ONLY``) that keeps the
        batch's members so both IRs can be rebuilt."""
        alone = self.runner(case, target, steps=steps)
        if alone.failed:
            return alone
        return replace(in_batch, status=BATCH_ONLY, failure_class=f"fails only inside a batch: {in_batch.failure_class}",
                       message=f"in one model with {in_batch.batch_size - 1} other case(s): {in_batch.message}; "
                               f"run alone it passes (context-dependent behaviour)")

    def _account(self, op, params, target, outcome: RunOutcome, index: int, batch: tuple | None = None) -> None:
        """Record one case's outcome on one target: statuses, primitives reached, findings
        (``batch``: a batch-only failure's batch members as [op, params] and its place among them)."""
        self.result.runs += 1
        self.result.statuses[outcome.status] += 1
        if outcome.status in ("unavailable", "untrustworthy"):
            return
        classes = strategies.attribute_class(op, params)
        for key, value in classes.items():
            self.class_runs[op, target.id, key, value] += 1
            self.class_rejections[op, target.id, key, value] += outcome.status in REJECTED
        if outcome.primitive:
            for key, value in classes.items():
                self.result.class_primitives[f"{op} {target.id} {key}={value}"].add(outcome.primitive)
        self.result.primitives[f"{op} x {target.id}"][outcome.primitive or f"({outcome.status})"] += 1
        if outcome.failed or outcome.status == BATCH_ONLY:
            self._record(op, params, target, outcome, classes, index, batch)

    def _record(self, op, params, target, outcome: RunOutcome, classes, index, batch=None) -> None:
        # a batch-only failure is a mismatch the registry cannot know (alone the case passes)
        failure = "mismatch" if outcome.status == BATCH_ONLY else outcome.status
        finding = Finding(op, target.id, failure, outcome.failure_class, outcome.primitive, dict(classes),
                          params, first_case=index, message=outcome.message, precision=outcome.precision,
                          seed=self.settings.seed)
        if batch is not None:
            finding.batch_members, finding.batch_position = batch
        existing = self.result.findings.get(finding.key)
        if existing is not None:
            existing.hits += 1
            return
        known = None if finding.batch_only else match_signature(
            self.entries, finding.signature(), self.result.openvino_version, self.features.get(target.id))
        finding.known = known.source if known else None
        self.result.findings[finding.key] = finding

    def signature_of(self, op: str, params: dict, target) -> tuple | None:
        """The dedup key ``params`` fails with on ``target``, or None (passes, invalid, too big)."""
        return self.signatures_of(op, [params], target)[0]

    def signatures_of(self, op: str, candidates: list[dict], target) -> list[tuple | None]:
        """``signature_of`` for each of ``candidates``, the batchable ones run as one model (``outcomes_on``)."""
        group = []
        for index, params in enumerate(candidates):
            try:
                case = load_case(op, params)
            except CaseError:
                continue
            if strategies.size_ok(case):
                group.append((index, params, case))
        outcomes = self.outcomes_on(target, [(op, params, case) for _, params, case in group],
                                    [self._prepare(case) for _, _, case in group])
        signatures: list[tuple | None] = [None] * len(candidates)
        for (index, params, _), (outcome, _) in zip(group, outcomes):
            if outcome.failed:
                signatures[index] = (op, target.id, outcome.failure_class, outcome.primitive or "",
                                     tuple(sorted(strategies.attribute_class(op, params).items())))
        return signatures

    def shrink_finding(self, finding: Finding, deadline: Callable[[], bool] | None = None) -> None:
        """Minimise ``finding.params`` keeping its signature (the dedup key). A finding that fails
        only inside a batch is left as it is: alone it passes, so there is nothing to shrink against."""
        if finding.batch_only:
            return
        target = next(target for target in self.settings.targets if target.id == finding.target)
        params, checks = shrinking.shrink(
            finding.params, lambda candidate: self.signature_of(finding.op, candidate, target) == finding.key,
            max_checks=self.settings.shrink_checks, deadline=deadline, batch=self.settings.batch_size,
            all_still_fail=lambda chunk: [signature == finding.key
                                          for signature in self.signatures_of(finding.op, chunk, target)])
        finding.params, finding.shrink_checks, finding.shrunk = params, checks, True
        if checks:   # the message of the minimal case, not of the first hit
            case = load_case(finding.op, params)
            outcome = self.runner(case, target, steps=self._prepare(case))
            finding.message, finding.precision = outcome.message, outcome.precision

    def run(self) -> CampaignResult:
        """Explore until ``max_cases`` or the time budget, then shrink every finding. The oracle runs
        on one torch thread meanwhile: on these small cases more threads cost more than they give
        (a campaign's oracle took 20 ms a case with 2 threads, 1.7 ms with one), and OpenVINO's
        worker needs the cores."""
        if not self.uses_oracle:
            return self._run()
        import torch
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return self._run()
        finally:
            torch.set_num_threads(threads)

    def _run(self) -> CampaignResult:
        settings, started = self.settings, time.monotonic()
        explore_until = (started + settings.time_budget * (1 - settings.shrink_share)
                         if settings.time_budget else None)
        last_progress = started
        index = 0
        while settings.max_cases is None or index < settings.max_cases:
            if explore_until is not None and time.monotonic() >= explore_until:
                break
            size = max(1, settings.batch_size)
            if settings.max_cases is not None:
                size = min(size, settings.max_cases - index)
            group = [self.next_case() for _ in range(size)]
            self.run_group(group, index)
            index += len(group)
            self.result.cases = index
            now = time.monotonic()
            if settings.progress and now - last_progress >= settings.progress_every:
                last_progress = now
                self._progress(now - started)
        self.result.explore_seconds = time.monotonic() - started
        end = started + settings.time_budget if settings.time_budget else None
        deadline = (lambda: time.monotonic() >= end) if end else None
        # New findings first: when the budget runs out, what is left unminimised is already known.
        for finding in sorted(self.result.findings.values(), key=lambda finding: finding.known is not None):
            if deadline and deadline() or (finding.known is not None and not settings.shrink_known):
                break
            self.shrink_finding(finding, deadline)
        self.result.seconds = time.monotonic() - started
        return self.result

    def _progress(self, seconds: float) -> None:
        result = self.result
        new = len(result.new_findings())
        self.settings.progress(f"[fuzz seed {result.seed}] {result.cases} cases, {result.runs} runs, "
                               f"{len(result.findings)} distinct findings ({new} new), "
                               f"{result.cases / seconds:.2f} cases/s")


def run_campaign(settings: Settings, runner: Runner | None = None,
                 batch_runner: BatchRunner | None = None) -> CampaignResult:
    """Run one campaign (see ``Campaign``)."""
    return Campaign(settings, runner, batch_runner).run()


def family(finding: Finding) -> str:
    """A coarse grouping for the summary: op, target and failure class (attributes and primitive left out)."""
    return f"{finding.op} on {finding.target}: {finding.failure_class}"


def _minimised(finding: Finding) -> str:
    if finding.shrunk:
        return "minimised"
    return "NOT minimised (known: the registry's case is its repro; --shrink-known)" if finding.known else \
        "NOT minimised (budget)"


def finding_text(finding: Finding, openvino_version: str, cpu: str) -> str:
    """The finding as a case file, with its provenance as comments (loads as is)."""
    name = finding.slug().replace("-", "_").replace(".", "_")
    # The params ran (they loaded then): only the text is needed, not a second parse (~8 ms a finding).
    text = document_text(finding.op, finding.params, name)
    attributes = ", ".join(f"{key}={value}" for key, value in sorted(finding.attributes.items()))
    status = f"KNOWN: matched by the registry entry at {finding.known}" if finding.known else \
        "NEW: no registry entry's signature matches"
    lines = [
        f"# Fuzz finding ({status})",
        f"# signature: op={finding.op} target={finding.target} failure={finding.failure_class!r} "
        f"primitive={finding.primitive or '-'}",
        f"# attribute classes: {attributes}",
        f"# raw hits: {finding.hits} (first at case {finding.first_case}); seed {finding.seed}; "
        f"{_minimised(finding)} in {finding.shrink_checks} checks",
        f"# ran in precision: {finding.precision or '-'}; OpenVINO {openvino_version or 'unknown'}",
        f"# CPU: {cpu}",
    ]
    first = (finding.message or "").strip().splitlines()[:3]
    lines += [f"# first message: {line[:200]}" for line in first]
    if finding.batch_only:
        lines.append(f"# fails only inside a batch of {len(finding.batch_members)} cases (member "
                     f"{finding.batch_position}); run alone it passes, so it is not minimised. Both IRs: "
                     f"{finding.slug()}/case.xml (alone) and {finding.slug()}/batch.xml (the batch)")
    return "\n".join(lines) + "\n" + text


def write_batch_irs(finding: Finding, directory: Path | str) -> tuple[Path, Path]:
    """A batch-only finding's two IRs in ``directory``: ``case.xml``/``.bin`` (the case alone, as the
    per-case run renders it) and ``batch.xml``/``.bin`` (the batch it failed in, as ``batch.run_batch``
    renders it; the case is subgraph ``render.batch_prefix(finding.batch_position)``)."""
    from ..inputs import make_inputs
    from ..render import render_batch, render_bytes
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    members = [load_params(op, params, f"member_{index}")[0] for index, (op, params) in
               enumerate(finding.batch_members)]
    # Inputs come from each case's own seed field, as the campaign made them.
    member_inputs = [make_inputs(case) for case in members]
    position = finding.batch_position
    paths = []
    for name, (xml, weights) in (("case", render_bytes(members[position], member_inputs[position])),
                                 ("batch", render_batch(list(zip(members, member_inputs)))[:2])):
        (directory / f"{name}.xml").write_bytes(xml)
        (directory / f"{name}.bin").write_bytes(weights)
        paths.append(directory / f"{name}.xml")
    return paths[0], paths[1]


def write_summary(result: CampaignResult, out: Path | str) -> Path:
    """``summary.json`` in ``out`` (``result.to_json``: what ``merge`` reads back); its path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / "summary.json"
    path.write_text(json.dumps(result.to_json(), indent=1, default=str), encoding="utf-8")
    return path


def finding_texts(result: CampaignResult) -> dict[str, str]:
    """``finding_text`` of each of ``result``'s findings, keyed by everything the text is made of
    (``_text_key``): ``write_findings`` takes them for findings that are still equal (e.g. made for a
    finished ``--jobs`` job while another one runs)."""
    return {_text_key(finding, result): finding_text(finding, result.openvino_version, result.cpu)
            for finding in result.findings.values()}


def _text_key(finding: Finding, result: CampaignResult) -> str:
    return json.dumps([finding.to_json(), result.openvino_version, result.cpu], sort_keys=True, default=str)


def write_findings(result: CampaignResult, out: Path | str, texts: dict[str, str] | None = None) -> list[Path]:
    """One YAML case file per distinct finding, plus ``summary.json``; returns the case files.
    ``texts``: finding texts made beforehand (``finding_texts``), used where a finding is unchanged."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    for finding in result.findings.values():
        path = out / f"{finding.slug()}.yaml"
        text = texts.get(_text_key(finding, result)) if texts else None
        path.write_text(text or finding_text(finding, result.openvino_version, result.cpu), encoding="utf-8")
        paths.append(path)
        if finding.batch_only:
            write_batch_irs(finding, out / finding.slug())
    write_summary(result, out)
    return paths


def merge(results: list[dict]) -> CampaignResult:
    """One result from several campaigns' ``to_json``: findings merged by signature (hits added,
    the simplest parameters kept), counts and primitives summed."""
    merged = CampaignResult(seed=results[0]["seed"] if results else 0)
    for data in results:
        merged.cases += data["cases"]
        merged.runs += data["runs"]
        merged.seconds = max(merged.seconds, data["seconds"])
        merged.explore_seconds = max(merged.explore_seconds, data.get("explore_seconds", 0.0))
        merged.statuses.update(data["statuses"])
        merged.openvino_version = data["openvino_version"]
        merged.cpu = data["cpu"]
        merged.targets = tuple(data["targets"])
        for key, counts in data["primitives"].items():
            merged.primitives[key].update(counts)
        for key, names in data["class_primitives"].items():
            merged.class_primitives[key].update(names)
        for raw in data["findings"]:
            finding = Finding(**raw)
            existing = merged.findings.get(finding.key)
            if existing is None:
                merged.findings[finding.key] = finding
                continue
            existing.hits += finding.hits
            if shrinking.size_key(finding.params) < shrinking.size_key(existing.params):
                existing.params, existing.seed, existing.shrunk = finding.params, finding.seed, finding.shrunk
    return merged


def summary_lines(result: CampaignResult) -> list[str]:
    """The human summary: primitives per op x target, finding families with counts, the rate."""
    lines = [f"primitives reached (op x target): "]
    for key, counts in sorted(result.primitives.items()):
        lines.append(f"  {key}: " + ", ".join(f"{name} {count}" for name, count in counts.most_common()))
    families = defaultdict(list)
    for finding in result.findings.values():
        families[family(finding)].append(finding)
    lines.append(f"{len(result.findings)} distinct findings in {len(families)} families "
                 f"({len(result.new_findings())} new):")
    for name, members in sorted(families.items()):
        new = sum(1 for member in members if member.known is None)
        hits = sum(member.hits for member in members)
        lines.append(f"  {name}: {len(members)} signatures, {hits} raw hits, {new} new")
    lines.append(f"statuses: " + ", ".join(f"{key} {value}" for key, value in sorted(result.statuses.items())))
    lines.append(f"{result.runs} runs; " + result.rate_line())
    return lines
