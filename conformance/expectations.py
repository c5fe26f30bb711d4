"""The expected-failure registry: known OpenVINO deviations, tied to releases and CPUs.

``expected_failures.yaml`` is a list of entries; a matching item becomes a strict
xfail (if OpenVINO is fixed, the XPASS fails the run and says which entry to
update). Two examples::

    - id: backprop-explicit-output-shape          # optional, unique in the file
      case: "group_convolution_backprop_data/output_shape.yaml::explicit_*"
      target: "CPU-*"                             # default "*"
      openvino: "2026.4.*"                        # or a release range: ">=2024.1,<2026.5"
      fails: mismatch                             # default; error | crashed | hung
      origin: "found by the suite"
      reason: "CPU ignores the spec's total_padding split for auto_pad=explicit"
      spec_note: "docs/spec-notes.md#sn-6"

    - case: "element_types/group_convolution.yaml::*[[]element_type=i8]"
      signature:                                  # also matches fuzzing findings without a case id
        op: GroupConvolution
        primitive: "jit_*i8"
        attributes: {element_type: i8}
      target: "CPU-*"
      openvino: ">=2026.4,<2026.5"
      cpu: {lacks: [avx512_core_vnni, avx2_vnni]} # the CPU features oneDNN may use for this target
      origin: "found by the suite; openvino issue #NNNN"
      reason: "i8 GroupConvolution without VNNI kernels returns wrong in-range results"

Fields:

- ``case``: shell-style glob (``fnmatch``; ``[[]`` is a literal ``[``) over case ids
  ``<file under cases/>::<name>[<swept values>]``. An entry needs ``case`` or ``signature``.
- ``target``: glob over target ids (``CPU-f32``, ``CPU-f32-avx2``...).
- ``openvino`` (required): a glob over the release (``2026.4.*``), or, when it starts with
  an operator, a PEP 440 range (``packaging.specifiers.SpecifierSet``, pre-releases included).
- ``cpu``: ``has: [...]`` (all present) and/or ``lacks: [...]`` (none present), over the
  oneDNN features the item's target may use: this machine's features (``conformance.cpu``)
  left by the target's ISA cap. Where no x86 feature is known (another architecture), a
  ``cpu`` condition does not hold. ``machine_has: [...]`` / ``machine_lacks: [...]`` are over
  the machine's own features before any cap, for a deviation of kernels the CPU plugin picks by
  the CPU's own cpuid (which ``ONEDNN_MAX_CPU_ISA`` does not hide): ``{has: [avx2], lacks:
  [avx512_core], machine_lacks: [avx512_core]}`` holds on an AVX2-only CPU, not on an AVX-512 one
  under an AVX2 cap. They are judged from a ``TargetFeatures`` (``target_features``); given plain
  effective features, the machine is not known and they do not hold.
- ``fails``: how the deviation shows: ``mismatch`` (wrong output), ``error`` (OpenVINO raises),
  ``crashed`` / ``hung`` (the isolated worker died / overran its time limit). Any other
  failure of a registered item is a plain failure.
- ``signature``: matches a ``FindingSignature`` (``match_signature``): ``op`` (exact),
  ``primitive`` (glob over the primitiveType that ran), ``attributes`` (attribute-class key ->
  glob; each must be in the finding), ``message`` (a glob, or a list of globs any of which
  may match, over the finding's message class: the normalised failure of
  ``releases.failure_signature``, e.g. ``error: compile: could not create primitive descriptor
  for deconvolution*`` or ``crashed: SIGSEGV``; it must be able to match the entry's ``fails``
  kind, so it starts with that kind or a wildcard). Without ``message`` any failure of the kind
  matches: another compile error on the same attributes would be taken for this one. The
  finding's failure kind, target, release and CPU are matched by the entry's ``fails``,
  ``target``, ``openvino`` and ``cpu``.
- ``intermittent``: ``true`` for a deviation that does not reproduce run to run (e.g. the device
  reads memory it never wrote): the item is a non-strict expected failure, so failing the
  registered way is ``xfailed`` and passing is ``xpassed`` without failing the run; the reason
  says so. Use it only with evidence of both outcomes on one build and CPU (say it in ``reason``);
  a deviation that always reproduces stays strict.
- ``min_threads``: the entry holds only when OpenVINO runs the item with at least this many
  inference threads (a deviation of multi-threaded kernels only; ``pytest -n 2`` gives each worker
  one thread); the count is ``worker.planned_inference_threads()``.
- ``origin``: where the entry comes from ("openvino issue #22343", "found by the suite",
  "fuzz campaign seed 1"); ``reason`` (required), ``spec_note``, ``id``: free text.

Every problem is a ``CaseError`` naming file, line and field.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

from . import cpu as cpu_features
from .case import CaseError, parse_yaml
from .ops import names as op_names

ENTRY_FIELDS = ("id", "case", "signature", "target", "openvino", "cpu", "min_threads", "fails", "intermittent",
                "origin", "reason", "spec_note")
# How a known deviation shows: a wrong output (mismatch), OpenVINO raising (error), or the
# isolated worker process dying (crashed) or overrunning its time limit (hung).
FAILS = ("mismatch", "error", "crashed", "hung")
CPU_CONDITION_FIELDS = ("has", "lacks", "machine_has", "machine_lacks")
# Pairs of cpu lists that cannot both hold for one feature (effective features are a subset of the machine's).
_CONTRADICTORY_CPU_LISTS = (("has", "lacks"), ("machine_has", "machine_lacks"), ("has", "machine_lacks"))
SIGNATURE_FIELDS = ("op", "primitive", "attributes", "message")
_RANGE_OPERATORS = ("<", ">", "=", "!", "~")
_ATTRIBUTE_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
# What message classes (``releases.failure_signature``) of each failure kind look like (for errors).
_MESSAGE_EXAMPLES = {"mismatch": "mismatch: output shape", "error": "error: compile: ...",
                     "crashed": "crashed: SIGSEGV", "hung": "hung"}


@dataclass(frozen=True)
class ReleaseRange:
    """The ``openvino`` field: a glob over the release, or a PEP 440 specifier set."""

    text: str

    @property
    def is_specifier(self) -> bool:
        """True for a PEP 440 range (``>=2024.1,<2026.5``), False for a glob (``2026.4.*``)."""
        return self.text.lstrip().startswith(_RANGE_OPERATORS)

    def contains(self, release: str) -> bool:
        """True when ``release`` (e.g. ``2026.4.1``) is in the range or matches the glob."""
        if not self.is_specifier:
            return fnmatchcase(release, self.text)
        try:
            version = Version(release)
        except InvalidVersion:
            return False
        return SpecifierSet(self.text).contains(version, prereleases=True)


def parse_release_range(text: str) -> ReleaseRange:
    """A checked ``ReleaseRange``; ``ValueError`` for an empty text or an invalid PEP 440 range."""
    if not isinstance(text, str) or not text.strip():
        raise ValueError("must be a quoted string: a release glob like \"2026.4.*\" or a range like "
                         f"\">=2024.1,<2026.5\", got {text!r}")
    release_range = ReleaseRange(text.strip())
    if release_range.is_specifier:
        try:
            SpecifierSet(release_range.text)
        except InvalidSpecifier:
            raise ValueError(f"{text!r} is not a PEP 440 release range (e.g. \">=2024.1,<2026.5\")") from None
    return release_range


class TargetFeatures(tuple):
    """A target's effective CPU features (a tuple of names, lowest first, as ``CpuInfo.effective`` gives)
    that also carries ``machine``: the features of the machine's own CPU before any ISA cap, which the
    ``cpu`` condition's ``machine_has`` / ``machine_lacks`` are judged by."""

    def __new__(cls, effective=(), machine=()):
        features = super().__new__(cls, effective)
        features.machine = tuple(machine)
        return features


def _with_and_without(has, lacks) -> str:
    return ", ".join(([f"with {', '.join(has)}"] if has else []) + ([f"without {', '.join(lacks)}"] if lacks else []))


@dataclass(frozen=True)
class CpuCondition:
    """The ``cpu`` field: effective features that must all be present (``has``) / all absent (``lacks``),
    and features of the machine's own CPU, before any ISA cap (``machine_has`` / ``machine_lacks``)."""

    has: tuple[str, ...] = ()
    lacks: tuple[str, ...] = ()
    machine_has: tuple[str, ...] = ()
    machine_lacks: tuple[str, ...] = ()

    @property
    def names_machine(self) -> bool:
        """True when the condition is also on the machine's own CPU (``machine_has`` / ``machine_lacks``)."""
        return bool(self.machine_has or self.machine_lacks)

    def holds(self, features, machine_features=None) -> bool:
        """True for these effective features and (if the condition names the machine) the machine's own
        features; never for ``None`` or no features (CPU not known as x86, or machine not given)."""
        if not features or (self.names_machine and not machine_features):
            return False
        present, machine = set(features), set(machine_features or ())
        return (all(name in present for name in self.has) and not any(name in present for name in self.lacks)
                and all(name in machine for name in self.machine_has)
                and not any(name in machine for name in self.machine_lacks))

    def describe(self) -> str:
        """E.g. ``CPU features with avx2, without avx512_core; machine's own CPU (before any ISA cap)
        without avx512_core``."""
        effective = _with_and_without(self.has, self.lacks)
        machine = _with_and_without(self.machine_has, self.machine_lacks)
        return "; ".join(([f"CPU features {effective}"] if effective else []) +
                         ([f"machine's own CPU (before any ISA cap) {machine}"] if machine else []))


@dataclass(frozen=True)
class FindingSignature:
    """A failure found without a case id (e.g. by fuzzing): what to look it up by in the registry.

    ``attributes`` maps attribute-class keys (``auto_pad``, ``groups``, ``element_type``...)
    to values; given as a dict, kept as sorted pairs so the signature is hashable.
    """

    op: str
    failure: str                  # one of FAILS
    target: str                   # target id, e.g. CPU-f32-avx2
    primitive: str | None = None  # the primitiveType that ran, when known
    attributes: tuple = ()
    message: str | None = None    # the message class (``releases.failure_signature``), e.g. "error: compile: ..."

    def __post_init__(self):
        pairs = self.attributes.items() if isinstance(self.attributes, dict) else self.attributes
        object.__setattr__(self, "attributes", tuple(sorted((str(key), str(value)) for key, value in pairs)))
        if self.failure not in FAILS:
            raise ValueError(f"failure {self.failure!r} is not one of {', '.join(FAILS)}")


@dataclass(frozen=True)
class Signature:
    """The ``signature`` field of an entry: op, primitive glob, attribute-class globs, message-class globs."""

    op: str | None = None
    primitive: str | None = None
    attributes: tuple = ()        # (key, glob) pairs
    messages: tuple = ()          # globs over the message class; any may match (none given: any class)

    def matches(self, finding: FindingSignature) -> bool:
        """True when ``finding``'s op, primitive, attributes and message class fit (failure/target are
        the entry's)."""
        if self.primitive is not None and not fnmatchcase(finding.primitive or "", self.primitive):
            return False
        if self.messages and not any(fnmatchcase(finding.message or "", glob) for glob in self.messages):
            return False
        return self.covers(finding.op, dict(finding.attributes))

    def covers(self, op: str, attributes: dict) -> bool:
        """True when ``op`` and the attribute classes ``attributes`` fit (primitive and message left out:
        what can be told of a case before it runs)."""
        if self.op is not None and op != self.op:
            return False
        return all(key in attributes and fnmatchcase(attributes[key], pattern) for key, pattern in self.attributes)


@dataclass(frozen=True)
class ExpectedFailure:
    """One registry entry and where it was written."""

    case: str | None
    target: str
    openvino: str
    reason: str
    spec_note: str | None
    source: str
    fails: str = "mismatch"
    cpu: CpuCondition | None = None
    signature: Signature | None = None
    origin: str | None = None
    id: str | None = None
    intermittent: bool = False          # fails only in some runs: a non-strict expected failure
    min_threads: int | None = None      # holds only with at least this many inference threads
    releases: ReleaseRange = field(default=None, compare=False, repr=False)

    def __post_init__(self):
        if self.releases is None:
            object.__setattr__(self, "releases", parse_release_range(self.openvino))

    def cpu_holds(self, features) -> bool:
        """True without a ``cpu`` condition, or when it holds for a target's effective ``features`` (and
        the machine's own, which a ``TargetFeatures`` carries; plain features: the machine is not known)."""
        return self.cpu is None or self.cpu.holds(features, getattr(features, "machine", None))

    def _common_match(self, target_id: str, openvino_release: str, features) -> bool:
        return (fnmatchcase(target_id, self.target) and self.releases.contains(openvino_release)
                and self.cpu_holds(features))

    def matches(self, case_id: str, target_id: str, openvino_release: str, features=None,
                threads: int | None = None) -> bool:
        """True for this case on this target, release, effective CPU features (see ``cpu``; a
        ``TargetFeatures`` also gives the machine's own) and inference thread count (see ``min_threads``;
        ``None``: unknown, and then it does not hold)."""
        return (self.case is not None and fnmatchcase(case_id, self.case)
                and self._common_match(target_id, openvino_release, features)
                and (self.min_threads is None or (threads is not None and threads >= self.min_threads)))

    def matches_finding(self, finding: FindingSignature, openvino_release: str, features=None) -> bool:
        """True when the entry's signature, failure kind, target, release and CPU condition fit."""
        return (self.signature is not None and self.fails == finding.failure and self.signature.matches(finding)
                and self._common_match(finding.target, openvino_release, features))

    def expects_of_classes(self, op: str, target_id: str, attributes: dict, openvino_release: str,
                           features=None) -> bool:
        """True when a case of ``op`` with the attribute classes ``attributes`` on ``target_id`` falls under
        this entry's signature (op and attributes; its primitive and message are not known before the
        case runs) and its target, release and CPU condition: the entry then expects it to fail as ``fails``."""
        return (self.signature is not None and self.signature.covers(op, attributes)
                and self._common_match(target_id, openvino_release, features))

    def describe(self, features=None) -> str:
        """The xfail reason: what deviates, where it is registered, what an XPASS means (with ``features``,
        the target's CPU features, and the machine's own when the ``cpu`` condition names them)."""
        note = f" (see {self.spec_note})" if self.spec_note else ""
        where = f" on {self.cpu.describe()}" if self.cpu else ""
        where += f" with {self.min_threads}+ inference threads" if self.min_threads else ""
        origin = f"; origin: {self.origin}" if self.origin else ""
        seen = ""
        if self.cpu is not None and features is not None:
            machine = (f"; the machine's own: {' '.join(getattr(features, 'machine', ())) or 'not known'}"
                       if self.cpu.names_machine else "")
            seen = f" (this target's CPU features: {' '.join(features) or 'none known'}{machine})"
        changed = "OpenVINO changed" + (" or the cpu condition is wrong" if self.cpu else "")
        if self.intermittent:
            return (f"known intermittent deviation on OpenVINO {self.openvino}{where}: {self.reason}{note} "
                    f"[{self.source}{origin}]. It fails in some runs only: a pass (XPASS) is expected now and "
                    f"then; if it never fails any more, {changed}{seen}: remove or narrow the entry at {self.source}.")
        return (f"known deviation on OpenVINO {self.openvino}{where}: {self.reason}{note} [{self.source}{origin}]. "
                f"If this item now passes (XPASS), {changed}{seen}: update the expected-failure registry, "
                f"removing or narrowing the entry at {self.source}.")


def load_registry(path: Path | str) -> list[ExpectedFailure]:
    """Parse the registry; a problem is a ``CaseError`` naming file, line and field."""
    path = Path(path)
    document = parse_yaml(path.read_text(encoding="utf-8"), path)
    if document is None:
        return []
    if not isinstance(document, list):
        raise CaseError(path, 1, None, "expected a list of entries")
    entries: list[ExpectedFailure] = []
    ids: dict[str, int] = {}
    for raw in document:
        entry = _entry(path, raw)
        if entry.id is not None:
            if entry.id in ids:
                raise CaseError(path, raw.key_lines["id"], "id", f"{entry.id!r} is already the id of the entry "
                                                                 f"on line {ids[entry.id]}")
            ids[entry.id] = raw.line
        entries.append(entry)
    return entries


def _entry(path: Path, raw) -> ExpectedFailure:
    line = getattr(raw, "line", 1)
    if not isinstance(raw, dict):
        raise CaseError(path, line, None, f"every entry must be a mapping, got {raw!r}")

    def at(key: str) -> int:
        return raw.key_lines.get(key, line)

    for key in raw:
        if key not in ENTRY_FIELDS:
            raise CaseError(path, at(key), str(key), f"unknown field (allowed: {', '.join(ENTRY_FIELDS)})")
    if "case" not in raw and "signature" not in raw:
        raise CaseError(path, line, "case", "is required unless the entry has a signature")
    for name in ("case", "target", "spec_note", "origin", "id"):
        if name in raw and (not isinstance(raw[name], str) or not raw[name].strip()):
            raise CaseError(path, at(name), name, f"must be a non-empty string, got {raw[name]!r}")
    if not isinstance(raw.get("reason"), str) or not raw["reason"].strip():
        raise CaseError(path, at("reason"), "reason", "is required (a non-empty string)")
    if "openvino" not in raw:
        raise CaseError(path, line, "openvino", "is required (a release glob like \"2026.4.*\" or a range)")
    try:
        releases = parse_release_range(raw["openvino"])
    except ValueError as error:
        raise CaseError(path, at("openvino"), "openvino", str(error)) from None
    fails = raw.get("fails", "mismatch")
    if fails not in FAILS:
        raise CaseError(path, at("fails"), "fails", f"{fails!r} is not one of {', '.join(FAILS)}")
    if "min_threads" in raw and (isinstance(raw["min_threads"], bool) or not isinstance(raw["min_threads"], int)
                                 or raw["min_threads"] < 1):
        raise CaseError(path, at("min_threads"), "min_threads", f"must be a whole number >= 1, got {raw['min_threads']!r}")
    if "intermittent" in raw and not isinstance(raw["intermittent"], bool):
        raise CaseError(path, at("intermittent"), "intermittent", f"must be true or false, got {raw['intermittent']!r}")
    return ExpectedFailure(
        case=raw.get("case"), target=str(raw.get("target", "*")), openvino=raw["openvino"], reason=raw["reason"],
        spec_note=raw.get("spec_note"), source=f"{path.name}:{line}", fails=fails,
        cpu=_cpu_condition(path, raw["cpu"], at("cpu")) if "cpu" in raw else None,
        signature=_signature(path, raw["signature"], at("signature"), fails) if "signature" in raw else None,
        origin=raw.get("origin"), id=raw.get("id"), intermittent=raw.get("intermittent", False), min_threads=raw.get("min_threads"), releases=releases)


def _cpu_condition(path: Path, raw, line: int) -> CpuCondition:
    if not isinstance(raw, dict) or not raw:
        raise CaseError(path, line, "cpu", f"expected a mapping with has:, lacks:, machine_has:, machine_lacks: "
                                           f"(lists of CPU features), got {raw!r}")
    lists = {}
    for key, value in raw.items():
        where = raw.key_lines[key]
        if key not in CPU_CONDITION_FIELDS:
            raise CaseError(path, where, f"cpu.{key}", f"unknown field (allowed: {', '.join(CPU_CONDITION_FIELDS)})")
        if not isinstance(value, list) or not value:
            raise CaseError(path, where, f"cpu.{key}", f"expected a non-empty list of CPU features, got {value!r}")
        names = []
        for index, name in enumerate(value):
            item_line = value.item_lines[index] if hasattr(value, "item_lines") else where
            try:
                names.append(cpu_features.canonical_feature(name) if isinstance(name, str) else
                             cpu_features.canonical_feature(repr(name)))
            except ValueError as error:
                raise CaseError(path, item_line, f"cpu.{key}", str(error)) from None
        lists[key] = tuple(names)
    for first, second in _CONTRADICTORY_CPU_LISTS:
        both = set(lists.get(first, ())) & set(lists.get(second, ()))
        if both:
            raise CaseError(path, line, "cpu", f"{', '.join(sorted(both))} in both {first}: and {second}: (never true)")
    return CpuCondition(**lists)


def _signature(path: Path, raw, line: int, fails: str) -> Signature:
    if not isinstance(raw, dict) or not raw:
        raise CaseError(path, line, "signature", f"expected a mapping with {', '.join(SIGNATURE_FIELDS)}, got {raw!r}")
    for key in raw:
        if key not in SIGNATURE_FIELDS:
            raise CaseError(path, raw.key_lines[key], f"signature.{key}",
                            f"unknown field (allowed: {', '.join(SIGNATURE_FIELDS)})")
    op = raw.get("op")
    if op is not None and op not in op_names():
        raise CaseError(path, raw.key_lines["op"], "signature.op", f"{op!r} is not one of {', '.join(op_names())}")
    primitive = raw.get("primitive")
    if primitive is not None and (not isinstance(primitive, str) or not primitive):
        raise CaseError(path, raw.key_lines["primitive"], "signature.primitive",
                        f"must be a non-empty string (a glob over primitiveType), got {primitive!r}")
    attributes = raw.get("attributes", {})
    if not isinstance(attributes, dict):
        raise CaseError(path, raw.key_lines["attributes"], "signature.attributes",
                        f"expected a mapping of attribute-class keys to globs, got {attributes!r}")
    pairs = []
    for key, value in attributes.items():
        where = attributes.key_lines[key]
        if not isinstance(key, str) or not _ATTRIBUTE_KEY.match(key):
            raise CaseError(path, where, "signature.attributes", f"{key!r} is not an attribute-class key (a name)")
        if not isinstance(value, (str, int, bool)) or value == "":
            raise CaseError(path, where, f"signature.attributes.{key}",
                            f"must be a string glob or a number, got {value!r}")
        pairs.append((key, str(value).lower() if isinstance(value, bool) else str(value)))
    messages = _message_globs(path, raw, fails) if "message" in raw else ()
    if op is None and primitive is None and not pairs and not messages:
        raise CaseError(path, line, "signature", "matches every finding: give op, primitive, attributes or message")
    return Signature(op, primitive, tuple(sorted(pairs)), messages)


def _message_globs(path: Path, raw, fails: str) -> tuple[str, ...]:
    """``signature.message``: one glob or a list of globs over message classes of the ``fails`` kind."""
    value, line = raw["message"], raw.key_lines["message"]
    globs = value if isinstance(value, list) else [value]
    if not globs:
        raise CaseError(path, line, "signature.message", "expected a glob or a non-empty list of globs, got []")
    checked = []
    for index, glob in enumerate(globs):
        where = value.item_lines[index] if isinstance(value, list) and hasattr(value, "item_lines") else line
        if not isinstance(glob, str) or not glob.strip():
            raise CaseError(path, where, "signature.message",
                            f"must be a non-empty string glob over the message class, got {glob!r}")
        # The literal start of the glob must agree with the kind: a class is "<fails>" or "<fails>: ...".
        literal = re.split(r"[*?[]", glob, maxsplit=1)[0]
        if not (literal.startswith(fails) or fails.startswith(literal)):
            raise CaseError(path, where, "signature.message",
                            f"{glob!r} never matches a {fails!r} finding: its message class starts with "
                            f"'{fails}' (e.g. \"{_MESSAGE_EXAMPLES[fails]}\"); set fails: or start the glob "
                            f"with '*'")
        checked.append(glob)
    return tuple(checked)


def release_of(openvino_version: str) -> str:
    """``2026.4.1-22982-e213a147257-releases/2026/4`` -> ``2026.4.1``."""
    return openvino_version.split("-")[0]


def match(entries: list[ExpectedFailure], case_id: str, target_id: str,
          openvino_version: str, features=None, threads: int | None = None) -> ExpectedFailure | None:
    """The first entry that covers this item on this OpenVINO release and these effective CPU features.

    ``features``: the oneDNN features the target may use (``conformance.cpu``: this CPU's,
    left by the target's ISA cap); ``None`` when unknown, and then no ``cpu`` condition holds.
    ``machine_has`` / ``machine_lacks`` hold only when ``features`` is a ``TargetFeatures`` (``target_features``).
    """
    release = release_of(openvino_version)
    for entry in entries:
        if entry.matches(case_id, target_id, release, features, threads):
            return entry
    return None


def match_signature(entries: list[ExpectedFailure], finding: FindingSignature, openvino_version: str,
                    features=None) -> ExpectedFailure | None:
    """The first entry whose ``signature`` (and fails, target, openvino, cpu) covers ``finding``."""
    release = release_of(openvino_version)
    for entry in entries:
        if entry.matches_finding(finding, release, features):
            return entry
    return None


def target_features(isa_cap: str | None, cpu: cpu_features.CpuInfo | None = None) -> TargetFeatures | None:
    """The effective CPU features of a target with ISA cap ``isa_cap`` on ``cpu`` (default this machine),
    carrying ``cpu``'s own features as ``machine``.

    A target without a cap runs under the process's ``ONEDNN_MAX_CPU_ISA``, if set.
    ``None`` when the CPU's features are not known (not x86, or no /proc/cpuinfo).
    """
    cpu = cpu or cpu_features.this_cpu()
    return TargetFeatures(cpu.effective(cpu_features.target_cap(isa_cap)), cpu.features) if cpu.features else None
