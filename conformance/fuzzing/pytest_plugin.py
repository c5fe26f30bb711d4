"""pytest entry point of the fuzzer: ``pytest --fuzz N`` runs an N-case campaign as one item.

With ``--fuzz N`` the session runs only the campaign (the case files are not run): one item,
``fuzz-campaign[seed=S]``, on the run's ``--target`` list (default CPU:f32). It fails when a
finding is not in the registry (listing them), and writes the findings (one case file each,
plus ``summary.json``) beside the report: ``<report dir>/fuzz-findings/`` (``reports/`` by default).
"""
from __future__ import annotations

from pathlib import Path

import pytest


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("conformance-fuzz", "conformance fuzzing")
    group.addoption("--fuzz", type=int, default=None, metavar="N",
                    help="run an N-case fuzzing campaign (ov-conformance fuzz) instead of the case files")
    group.addoption("--fuzz-seed", type=int, default=1, metavar="SEED", help="the campaign's seed (default 1)")


class FuzzFailure(Exception):
    """The campaign found deviations no registry entry covers."""


class FuzzItem(pytest.Item):
    """One fuzzing campaign as one test item."""

    def __init__(self, *, cases: int, seed: int, **kwargs):
        super().__init__(**kwargs)
        self.cases, self.seed = cases, seed
        self.summary: list[str] = []

    def runtest(self) -> None:
        from ..targets import parse_target
        from . import campaign
        config = self.config
        targets = tuple(parse_target(text) for text in (config.getoption("conformance_targets", None) or ["CPU:f32"]))
        registry = config.getoption("expected_failures", None) or str(config.rootpath / "expected_failures.yaml")
        settings = campaign.Settings(seed=self.seed, max_cases=self.cases, targets=targets, registry=registry)
        result = campaign.run_campaign(settings)
        report = config.getoption("conformance_report", None)
        out = (Path(report).parent if report else config.rootpath / "reports") / "fuzz-findings"
        campaign.write_findings(result, out)
        self.summary = campaign.summary_lines(result) + [f"findings: {out}"]
        self.add_report_section("call", "fuzz campaign", "\n".join(self.summary))
        new = result.new_findings()
        if new:
            raise FuzzFailure("\n".join([f"{len(new)} finding(s) not in the registry:"] + [
                f"  {out / (finding.slug() + '.yaml')}: {campaign.family(finding)}" for finding in new]
                + self.summary))

    def repr_failure(self, excinfo, style=None):
        if isinstance(excinfo.value, FuzzFailure):
            return str(excinfo.value)
        return super().repr_failure(excinfo, style)

    def reportinfo(self):
        return self.path, None, f"fuzz campaign seed {self.seed}, {self.cases} cases"


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list) -> None:
    cases = config.getoption("fuzz")
    if cases is None:
        return
    seed = config.getoption("fuzz_seed")
    deselected = list(items)
    items[:] = [FuzzItem.from_parent(session, name=f"fuzz-campaign[seed={seed}]", cases=cases, seed=seed)]
    if deselected:
        config.hook.pytest_deselected(items=deselected)
