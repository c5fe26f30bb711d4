"""The expected-failure registry: known OpenVINO deviations, tied to releases.

``expected_failures.yaml`` lists entries like::

    - case: "group_convolution_backprop_data/output_shape.yaml::explicit_*"
      target: "CPU-*"
      openvino: "2026.4.*"
      reason: "CPU ignores the spec's total_padding split for auto_pad=explicit"
      spec_note: "docs/spec-notes.md#sn-6"
      fails: mismatch      # default; or "error": OpenVINO raises compiling/running the IR

Patterns are shell-style (``fnmatch``; ``[[]`` matches a literal ``[``). A matching item becomes a strict
xfail: if OpenVINO is fixed, the XPASS fails the run and says to update the
registry. Entries only apply to the OpenVINO releases they name.
"""
from __future__ import annotations

from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from .case import CaseError, parse_yaml

ENTRY_FIELDS = ("case", "target", "openvino", "reason", "spec_note", "fails")
# How a known deviation shows: a wrong output (mismatch) or OpenVINO raising (error).
FAILS = ("mismatch", "error")


@dataclass(frozen=True)
class ExpectedFailure:
    """One registry entry and where it was written."""

    case: str
    target: str
    openvino: str
    reason: str
    spec_note: str | None
    source: str
    fails: str = "mismatch"

    def matches(self, case_id: str, target_id: str, openvino_release: str) -> bool:
        return (fnmatchcase(case_id, self.case) and fnmatchcase(target_id, self.target)
                and fnmatchcase(openvino_release, self.openvino))

    def describe(self) -> str:
        note = f" (see {self.spec_note})" if self.spec_note else ""
        return (f"known deviation on OpenVINO {self.openvino}: {self.reason}{note} [{self.source}]. "
                f"If this item now passes (XPASS), OpenVINO changed: update the expected-failure registry, "
                f"removing or narrowing the entry at {self.source}.")


def load_registry(path: Path | str) -> list[ExpectedFailure]:
    """Parse the registry; a problem is a ``CaseError`` naming file, line and field."""
    path = Path(path)
    document = parse_yaml(path.read_text(encoding="utf-8"), path)
    if document is None:
        return []
    if not isinstance(document, list):
        raise CaseError(path, 1, None, "expected a list of entries")
    entries = []
    for raw in document:
        line = getattr(raw, "line", 1)
        if not isinstance(raw, dict):
            raise CaseError(path, line, None, f"every entry must be a mapping, got {raw!r}")
        for key in raw:
            if key not in ENTRY_FIELDS:
                raise CaseError(path, raw.key_lines[key], str(key), f"unknown field (allowed: {', '.join(ENTRY_FIELDS)})")
        for required in ("case", "openvino", "reason"):
            if not isinstance(raw.get(required), str) or not raw.get(required):
                where = raw.key_lines.get(required, line)
                raise CaseError(path, where, required, "is required (a non-empty string)")
        for optional in ("target", "spec_note"):
            if optional in raw and not isinstance(raw[optional], str):
                raise CaseError(path, raw.key_lines[optional], optional,
                                f"must be a string, got {raw[optional]!r}")
        fails = raw.get("fails", "mismatch")
        if fails not in FAILS:
            raise CaseError(path, raw.key_lines["fails"], "fails", f"{fails!r} is not one of {', '.join(FAILS)}")
        entries.append(ExpectedFailure(raw["case"], str(raw.get("target", "*")), raw["openvino"],
                                       raw["reason"], raw.get("spec_note"), f"{path.name}:{line}", fails))
    return entries


def release_of(openvino_version: str) -> str:
    """``2026.4.1-22982-e213a147257-releases/2026/4`` -> ``2026.4.1``."""
    return openvino_version.split("-")[0]


def match(entries: list[ExpectedFailure], case_id: str, target_id: str,
          openvino_version: str) -> ExpectedFailure | None:
    """The first entry that covers this item on this OpenVINO release, if any."""
    release = release_of(openvino_version)
    for entry in entries:
        if entry.matches(case_id, target_id, release):
            return entry
    return None
