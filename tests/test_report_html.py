"""The HTML report in a real headless browser (Debian's chromium): it renders, its tables are there.

Skips, saying why, when chromium is not installed (.ci/run installs it). Set
CONFORMANCE_ARTIFACTS=DIR to keep the screenshot (CI uploads it).
"""
from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from lxml import html as lxml_html

from reporting_support import make_suite

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed "
                                "(apt-get install -y chromium; .ci/run does this)")


def _chromium(tmp_path: Path, *arguments: str) -> subprocess.CompletedProcess:
    profile = tmp_path / f"chromium-profile-{len(list(tmp_path.glob('chromium-profile-*')))}"
    command = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync",
               f"--user-data-dir={profile}", "--window-size=1400,1000", *arguments]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=True)


@pytest.fixture
def html_report(pytester):
    make_suite(pytester, corrupt=True)
    result = pytester.runpytest()
    result.assert_outcomes(passed=4, failed=1)
    return pytester.path / "reports" / "conformance.html"


def test_html_report_renders_in_chromium(html_report, tmp_path):
    dom = lxml_html.fromstring(_chromium(tmp_path, "--dump-dom", html_report.as_uri()).stdout)
    assert dom.findtext(".//h1") == "OpenVINO op conformance"
    matrix = dom.get_element_by_id("matrix")
    assert [th.text_content() for th in matrix.findall(".//thead//th")] == ["op", "CPU-f32"]
    assert [row.findtext("th") for row in matrix.findall(".//tbody/tr")] == [
        "GroupConvolution", "GroupConvolutionBackpropData"]
    assert "66.7%" in matrix.findall(".//tbody/tr")[0].text_content()  # 2 of 3 conv items pass
    counts = dom.get_element_by_id("counts")
    header = [th.text_content() for th in counts.findall(".//thead//th")]
    for column in ("implemented", "passed", "failed", "xfailed", "skipped", "crashed", "hung", "pass rate"):
        assert column in header
    rows = dom.get_element_by_id("items").findall(".//tbody/tr")
    assert len(rows) == 5
    failing = rows[0]  # failing items come first
    assert "broken_b" in failing.text_content() and failing.get("class") == "row-failed"
    link = failing.find(".//a").get("href")
    assert (html_report.parent / link / "reproduce.py").is_file()  # the link reaches the bundle

    screenshot = tmp_path / "conformance-html.png"
    _chromium(tmp_path, f"--screenshot={screenshot}", html_report.as_uri())
    assert screenshot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and screenshot.stat().st_size > 10_000
    if os.environ.get("CONFORMANCE_ARTIFACTS"):
        keep = Path(os.environ["CONFORMANCE_ARTIFACTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, keep / screenshot.name)


# Injected into a copy of the page (the report itself has no scripts): opens every <details> and
# records the window width, the page's scroll width and the right edge of the items table.
WIDTH_PROBE = ('<script>document.querySelectorAll("details").forEach(function (d) { d.open = true; });'
               'document.body.setAttribute("data-widths", [window.innerWidth, document.documentElement.scrollWidth,'
               'Math.round(document.getElementById("items").getBoundingClientRect().right)].join(","));</script>')


@pytest.mark.parametrize("width", [1400, 1800, 2400])
def test_details_column_stays_in_the_window(html_report, tmp_path, width):
    """With every failure's details open, nothing reaches past the window's right edge."""
    probe = tmp_path / "probe.html"
    probe.write_text(html_report.read_text().replace("</body>", WIDTH_PROBE + "</body>"))
    dom = lxml_html.fromstring(_chromium(tmp_path, "--dump-dom", f"--window-size={width},900",
                                         probe.as_uri()).stdout)
    window, scroll, table_right = map(int, dom.find(".//body").get("data-widths").split(","))
    assert window == width and scroll <= window and table_right <= window, (window, scroll, table_right)


def test_performance_plot_in_chromium(pytester, tmp_path):
    """pytest --perf: the inline SVG plot (one bar per passed item, grouped by primitive) and the table."""
    make_suite(pytester)
    pytester.runpytest("--perf", "--perf-budget", "0.01").assert_outcomes(passed=5)
    page = pytester.path / "reports" / "conformance.html"
    dom = lxml_html.fromstring(_chromium(tmp_path, "--dump-dom", page.as_uri()).stdout)
    plot = dom.get_element_by_id("perf-plot")
    bars = [rect for rect in plot.iter("rect") if "perf-bar" in rect.get("class", "")]
    assert len(bars) == 5 and all(float(bar.get("width")) > 0 and float(bar.get("data-ratio")) > 0 for bar in bars)
    assert {bar.get("data-case").split(" [")[0].split("::")[1] for bar in bars} == {
        "ok_a[strides=1x1]", "ok_a[strides=2x2]", "broken_b", "ok_c", "uniform_d"}
    groups = [text.text_content() for text in plot.iter("text") if text.get("class") == "group"]
    assert groups and all("items" in group for group in groups)   # one heading per primitive
    assert len(dom.get_element_by_id("perf").findall(".//tbody/tr")) == 5
