"""The expected-failure registry held against measured release histories.

``ov-conformance releases`` writes a matrix (case x release -> pass / mismatch / error /
crashed / hung). Two questions about ``expected_failures.yaml`` follow from it:

- ``check``: for every measured cell, does the registry expect what was observed? A cell
  the registry calls ``pass`` that failed, or a registered failure that passed or failed
  another way, is a disagreement: the entry's range (or its ``fails``) is wrong.
- ``suggest``: for every entry, which release range do its cases actually fail in (the
  same way as the entry says)? Contiguous runs of such releases become PEP 440 ranges:
  ``>=first_bad,<first_good_after``; a run reaching the newest release measured is open
  (``>=first_bad``). The oldest release measured is a lower bound of what is known, not a
  first bad release: the suggestion says so.

Both use the matrix's target (its ISA cap) and this machine's CPU features, exactly as the
pytest plugin matches items.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from . import expectations
from .targets import ISA_CAPS

PASS = "pass"


@dataclass(frozen=True)
class Disagreement:
    """One measured cell the registry gets wrong."""

    case_id: str
    release: str
    observed: str
    expected: str                 # "pass" when no entry covers the cell, else the entry's fails
    entry: str | None             # the covering entry's file:line

    def describe(self) -> str:
        """One line: the cell, what was measured, what the registry says."""
        where = f" (entry {self.entry})" if self.entry else " (no entry)"
        return f"{self.case_id} on {self.release}: measured {self.observed}, registry expects {self.expected}{where}"


@dataclass(frozen=True)
class Suggestion:
    """The release ranges an entry's cases were measured to fail in, the entry's way."""

    entry: str                    # file:line
    current: str                  # the entry's openvino field
    ranges: tuple[str, ...]       # PEP 440 ranges, one per contiguous run of failing releases
    cases: int                    # matrix cases the entry's case glob and target cover
    mixed: tuple[str, ...]        # releases where some of its cases failed its way and others did not
    oldest_measured: str

    def describe(self) -> str:
        """What to write in the entry's ``openvino`` field, in words."""
        if not self.cases:
            return f"{self.entry}: no case of the matrix matches this entry (current: {self.current!r})"
        if not self.ranges:
            found = f"; mixed on {', '.join(self.mixed)}" if self.mixed else ""
            return (f"{self.entry}: its {self.cases} case(s) never fail its way on the releases measured{found} "
                    f"(current: {self.current!r})")
        text = " and ".join(repr(r) for r in self.ranges)
        split = " (several runs: one entry per range)" if len(self.ranges) > 1 else ""
        lower = (f"; {self.oldest_measured} is the oldest release measured, older ones unknown"
                 if any(r.startswith(f">={self.oldest_measured}") for r in self.ranges) else "")
        mixed = f"; mixed on {', '.join(self.mixed)}" if self.mixed else ""
        return (f"{self.entry}: {self.cases} case(s) fail its way on {text}{split} "
                f"(current: {self.current!r}){lower}{mixed}")


def load_matrix(path: Path | str) -> dict:
    """A matrix JSON written by ``ov-conformance releases``."""
    document = json.loads(Path(path).read_text(encoding="utf-8"))
    if not isinstance(document, dict) or not {"target", "releases", "cells"} <= set(document):
        raise ValueError(f"{path}: not a release matrix (expected the JSON of 'ov-conformance releases')")
    return document


def matrix_features(matrix: dict, cpu=None):
    """The effective CPU features the matrix's target ran with (its ISA cap, if any, on this CPU)."""
    caps = [part for part in str(matrix["target"]).split("-")[2:] if part in ISA_CAPS]
    return expectations.target_features(caps[0] if caps else None, cpu)


def _status(cell) -> str:
    return cell["status"] if isinstance(cell, dict) else str(cell)


def check(entries: list[expectations.ExpectedFailure], matrix: dict, features=None) -> list[Disagreement]:
    """Every measured cell where the registry's expectation differs from the observed status.

    Cells whose release could not be installed (no status among the outcomes) are skipped.
    """
    disagreements = []
    for case_id, cells in matrix["cells"].items():
        for release in matrix["releases"]:
            if release not in cells:
                continue
            observed = _status(cells[release])
            if observed not in (PASS, *expectations.FAILS):
                continue   # not installable, not run
            entry = expectations.match(entries, case_id, matrix["target"], release, features)
            expected = entry.fails if entry else PASS
            if observed != expected:
                disagreements.append(Disagreement(case_id, release, observed, expected,
                                                  entry.source if entry else None))
    return disagreements


def suggest(entries: list[expectations.ExpectedFailure], matrix: dict, features=None) -> list[Suggestion]:
    """For each entry with a ``case`` glob: the release ranges its matrix cases fail in, its way.

    A release counts as failing when every covered case measured there failed as the entry's
    ``fails`` says; "mixed" when only some did. The entry's own ``cpu`` condition must hold for
    the matrix's features (an entry for other CPUs is not judged by this machine's matrix).
    """
    releases = list(matrix["releases"])
    suggestions = []
    for entry in entries:
        if entry.case is None or not entry.cpu_holds(features):
            continue
        covered = [cells for case_id, cells in matrix["cells"].items()
                   if fnmatchcase(case_id, entry.case) and fnmatchcase(matrix["target"], entry.target)]
        failing, mixed = [], []
        for release in releases:
            statuses = [_status(cells[release]) for cells in covered if release in cells]
            hits = sum(status == entry.fails for status in statuses)
            failing.append(bool(statuses) and hits == len(statuses))
            if 0 < hits < len(statuses):
                mixed.append(release)
        suggestions.append(Suggestion(entry.source, entry.openvino, _ranges(releases, failing),
                                      len(covered), tuple(mixed), releases[0] if releases else ""))
    return suggestions


def _ranges(releases: list[str], failing: list[bool]) -> tuple[str, ...]:
    """Contiguous runs of failing releases as PEP 440 ranges (``>=A,<B``, or ``>=A`` to the newest)."""
    ranges, start = [], None
    for index, bad in enumerate(failing + [False]):
        if bad and start is None:
            start = index
        elif not bad and start is not None:
            upper = f",<{releases[index]}" if index < len(releases) else ""
            ranges.append(f">={releases[start]}{upper}")
            start = None
    return tuple(ranges)
