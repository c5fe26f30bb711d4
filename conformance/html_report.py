"""The HTML summary page: one self-contained file (inline CSS, no scripts, no network).

Layout follows OpenVINO's own conformance summary: a matrix op x target whose
cells show the pass rate and the counts behind it, then the counts table, then
one row per item with its errors, tolerance, kernel primitive and repro link.
Everything is escaped; the output is a pure function of the report (no clock).
"""
from __future__ import annotations

import math
from html import escape

from .report import COUNT_COLUMNS, FAILING, OUTCOMES, geometric_mean, headline, performance_groups, untimed_items

_STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 1.5em; color: #1d1d1f; }
h1 { font-size: 1.4em; } h2 { font-size: 1.15em; margin-top: 1.6em; }
table { border-collapse: collapse; margin: .5em 0; }
th, td { border: 1px solid #c8c8cc; padding: 3px 7px; text-align: left; vertical-align: top; }
th { background: #eef0f4; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.cell { text-align: center; min-width: 9em; }
#items { width: 100%; table-layout: fixed; }
#items code { word-break: break-all; }
#items td { overflow-wrap: anywhere; }
#items col.case { width: 22%; } #items col.details { width: 25%; } #items col.short { width: 6%; }
#items col.tolerance { width: 8%; } #items col.primitive { width: 9%; } #items col.repro { width: 6%; }
.rate { font-size: 1.25em; font-weight: 600; display: block; }
.counts { font-size: .8em; color: #444; }
.good { background: #d9f2dc; } .warn { background: #fff1c2; } .bad { background: #f9d0cc; }
.none { background: #f1f1f1; }
.o-passed { color: #1a7f37; } .o-failed, .o-error, .o-crashed, .o-hung, .o-xpassed { color: #b3261e; font-weight: 600; }
.o-xfailed { color: #555; font-style: italic; } .o-skipped { color: #666; }
#perf-plot text { font: 11px system-ui, sans-serif; fill: #1d1d1f; } #perf-plot .group { font-weight: 600; }
#perf-plot .slower { fill: #d9776f; } #perf-plot .faster { fill: #6fb37a; } #perf-plot .grid { stroke: #d0d0d6; }
#perf-plot .one { stroke: #1d1d1f; }
details summary { cursor: pointer; } pre { white-space: pre-wrap; margin: .3em 0; font-size: .85em; }
code { font-size: .9em; }
"""


def _rate_class(cell: dict) -> str:
    """A cell's colour by what needs attention, not by its pass rate: red when an item failed
    unexpectedly (failed, XPASS, crashed, hung, error), green otherwise; expected failures
    (known deviations, strict xfails) lower the rate but not the colour: a green run reads green."""
    if cell["pass_rate"] is None and not any(cell[name] for name in FAILING):
        return "none"
    return "bad" if any(cell[name] for name in FAILING) else "good"


def _rate(rate: float | None) -> str:
    return "n/a" if rate is None else f"{rate:.1f}%"


def _number(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    return "" if value is None else escape(str(value))


def _matrix(summary: dict, targets: list[str]) -> list[str]:
    rows = ['<table id="matrix"><thead><tr><th>op</th>'
            + "".join(f"<th>{escape(target)}</th>" for target in targets) + "</tr></thead><tbody>"]
    for op, per_target in summary["matrix"].items():
        cells = []
        for target in targets:
            cell = per_target.get(target)
            if cell is None:
                cells.append('<td class="cell none">-</td>')
                continue
            counts = " ".join(f"{name[0].upper() if name not in ('xfailed', 'xpassed') else name[:2].upper()}:{cell[name]}"
                              for name in ("passed", "failed", "xfailed", "skipped", "crashed", "hung") if cell[name])
            title = ", ".join(f"{name} {cell[name]}" for name in ("items",) + COUNT_COLUMNS)
            cells.append(f'<td class="cell {_rate_class(cell)}" title="{escape(title)}">'
                         f'<span class="rate">{_rate(cell["pass_rate"])}</span>'
                         f'<span class="counts">{escape(counts)}</span></td>')
        rows.append(f"<tr><th>{escape(op)}</th>{''.join(cells)}</tr>")
    rows.append("</tbody></table>")
    return rows


def _counts(summary: dict) -> list[str]:
    header = "".join(f"<th>{name}</th>" for name in ("op", "target", "items") + COUNT_COLUMNS + ("pass rate",))
    rows = [f'<table id="counts"><thead><tr>{header}</tr></thead><tbody>']
    lines = [(op, target, cell) for op, per_target in summary["matrix"].items() for target, cell in per_target.items()]
    lines.append(("all", "all", summary["totals"]))
    for op, target, cell in lines:
        numbers = "".join(f'<td class="num">{cell[name]}</td>' for name in ("items",) + COUNT_COLUMNS)
        rows.append(f"<tr><td>{escape(op)}</td><td>{escape(target)}</td>{numbers}"
                    f'<td class="num {_rate_class(cell)}">{_rate(cell["pass_rate"])}</td></tr>')
    rows.append("</tbody></table>")
    return rows


def _items(items: list[dict]) -> list[str]:
    header = "".join(f"<th>{name}</th>" for name in (
        "case", "target", "outcome", "max abs error", "max rel error", "tolerance (rtol / largest atol)",
        "primitive", "runtime precision", "repro", "details"))
    # Fixed layout with column widths: the table fits the window (1400 px and up) and long
    # reasons wrap inside the details column instead of pushing it off the page.
    columns = ('<col class="case"><col class="short"><col class="short"><col class="short"><col class="short">'
               '<col class="tolerance"><col class="primitive"><col class="short"><col class="repro"><col class="details">')
    rows = [f'<table id="items"><colgroup>{columns}</colgroup><thead><tr>{header}</tr></thead><tbody>']
    for item in items:
        verdict, run = item.get("verdict") or {}, item.get("run") or {}
        tolerance = ""
        if "rtol" in verdict:
            tolerance = f'<span title="{escape(verdict.get("tolerance", ""))}">{_number(verdict["rtol"])} / {_number(verdict.get("max_atol"))}</span>'
        repro = ""
        if item.get("repro"):
            link = escape(item["repro"].rstrip("/") + "/")
            repro = f'<a href="{link}">bundle</a> · <a href="{link}reproduce.py">reproduce.py</a>'
        details = ""
        if item.get("reason"):
            reason = item["reason"]
            first = headline(item) or reason.splitlines()[0]
            details = (f"<details><summary>{escape(first[:140])}</summary><pre>{escape(reason)}</pre></details>")
        outcome = item["outcome"]
        rows.append(
            f'<tr class="row-{outcome}"><td><code>{escape(item["case_id"])}</code><br>'
            f'<small>{escape(item["source"])}</small></td><td>{escape(item["target_id"])}</td>'
            f'<td class="o-{outcome}">{outcome}</td>'
            f'<td class="num">{_number(verdict.get("max_abs_error"))}</td>'
            f'<td class="num">{_number(verdict.get("max_rel_error"))}</td>'
            f"<td>{tolerance}</td><td>{escape(run.get('primitive_type') or '')}</td>"
            f"<td>{escape(run.get('runtime_precision') or '')}</td><td>{repro}</td><td>{details}</td></tr>")
    rows.append("</tbody></table>")
    return rows


def _cross_target(section: dict | None) -> list[str]:
    """Targets compared with each other on the same inputs (multi-target runs; see bundles.py)."""
    if not section or not section.get("pairs"):
        return []
    rows = ["<h2>Cross-target differences</h2>", '<table id="cross-target"><thead><tr><th>targets</th><th>cases</th>'
            "<th>identical</th><th>differing</th><th>beyond tolerance</th><th>max abs diff</th></tr></thead><tbody>"]
    for pair, counts in section["pairs"].items():
        rows.append(f"<tr><td>{escape(pair)}</td>" + "".join(
            f'<td class="num">{_number(counts[key]) if counts[key] is not None else "shape/NaN"}</td>'
            for key in ("cases", "identical", "differing", "beyond_tolerance", "max_abs_diff")) + "</tr>")
    rows.append("</tbody></table>")
    return rows


# The performance plot: one bar per timed item, log2 of OpenVINO's latency / torch's, grouped by primitive.
_PLOT_LABEL, _PLOT_BARS, _PLOT_ROW, _PLOT_TOP = 380, 520, 16, 28


def _short(text: str, limit: int = 58) -> str:
    return text if len(text) <= limit else "…" + text[-(limit - 1):]


def _performance_plot(groups: dict[str, list[dict]]) -> str:
    """Inline SVG: per primitive a heading (geometric-mean ratio), then one bar per item from ratio 1
    (left: OpenVINO faster than torch, right: slower), on a log2 axis clipped at 1/64 .. 64."""
    ratios = [row["perf"]["ratio"] for rows in groups.values() for row in rows if row["perf"].get("ratio")]
    reach = min(6, max(1, math.ceil(max((abs(math.log2(r)) for r in ratios), default=1))))
    centre, scale = _PLOT_LABEL + _PLOT_BARS / 2, _PLOT_BARS / 2 / reach
    rows = sum(len(members) + 1 for members in groups.values())
    height = _PLOT_TOP + rows * _PLOT_ROW + 8
    width = _PLOT_LABEL + _PLOT_BARS + 60
    parts = [f'<svg id="perf-plot" xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" role="img" aria-label="latency ratio OpenVINO / torch per case">']
    for power in range(-reach, reach + 1):
        x = centre + power * scale
        label = f"{2 ** power:g}" if power >= 0 else f"1/{2 ** -power}"
        parts.append(f'<line class="{"one" if power == 0 else "grid"}" x1="{x:.1f}" y1="{_PLOT_TOP - 6}" '
                     f'x2="{x:.1f}" y2="{height - 4}"/><text x="{x:.1f}" y="{_PLOT_TOP - 10}" '
                     f'text-anchor="middle">{label}</text>')
    y = _PLOT_TOP
    for primitive, members in groups.items():
        mean = geometric_mean([row["perf"].get("ratio") for row in members])
        parts.append(f'<text class="group" x="4" y="{y + 12}">{escape(primitive)} ({len(members)} items'
                     + (f", geometric mean {mean:.2f}x" if mean else "") + ")</text>")
        y += _PLOT_ROW
        for row in members:
            ratio, timing = row["perf"].get("ratio"), row["perf"]
            label = f"{row['case_id']} [{row['target_id']}]"
            if ratio:
                end = centre + max(-reach, min(reach, math.log2(ratio))) * scale
                left, bar = min(centre, end), max(abs(end - centre), 1.0)
                tip = (f"{label}: OpenVINO {timing['latency_ms']:.4g} ms, torch {timing['torch_latency_ms']:.4g} ms, "
                       f"ratio {ratio:.3g}, {timing.get('gflops_per_s') or 0:.3g} GFLOP/s")
                side = "slower" if ratio > 1 else "faster"
                parts.append(f'<rect class="perf-bar {side}" data-case="{escape(label)}" data-ratio="{ratio}" '
                             f'x="{left:.1f}" y="{y + 3}" width="{bar:.1f}" height="{_PLOT_ROW - 5}">'
                             f'<title>{escape(tip)}</title></rect>')
                parts.append(f'<text x="{_PLOT_LABEL + _PLOT_BARS + 4}" y="{y + 12}">{ratio:.2f}x</text>')
            shown = f"{row['case_id'].split('::', 1)[-1]} [{row['target_id']}]"   # the file is in the tooltip
            parts.append(f'<text x="12" y="{y + 12}"><title>{escape(label)}</title>{escape(_short(shown))}</text>')
            y += _PLOT_ROW
    parts.append("</svg>")
    return "".join(parts)


def _performance(items: list[dict]) -> list[str]:
    """The performance view (pytest --perf): the plot, then a table of every timed item."""
    groups = performance_groups(items)
    untimed = untimed_items(items)
    if not groups and not untimed:
        return []
    rows = ["<h2>Performance (pytest --perf)</h2>",
            "<p><small>OpenVINO's median latency of the item's single-case model and torch's (float32) on the "
            "same inputs and thread count, after warm-up; bars: OpenVINO / torch (left of 1: OpenVINO faster). "
            "GFLOP = 2 x multiply-adds of the op's geometry. Timings never enter a verdict.</small></p>",
            _performance_plot(groups) if groups else "",
            '<table id="perf"><thead><tr>' + "".join(f"<th>{name}</th>" for name in (
                "case", "target", "primitive", "OpenVINO ms (median)", "min ms", "spread (IQR/median)", "repeats",
                "torch ms", "ratio OV/torch", "GFLOP", "GFLOP/s", "threads")) + "</tr></thead><tbody>"]
    for members in groups.values():
        for row in members:
            timing = row["perf"]
            cells = "".join(f'<td class="num">{_number(timing.get(key))}</td>' for key in (
                "latency_ms", "min_ms", "spread", "repeats", "torch_latency_ms", "ratio", "gflops", "gflops_per_s",
                "threads"))
            rows.append(f"<tr><td><code>{escape(row['case_id'])}</code></td><td>{escape(row['target_id'])}</td>"
                        f"<td>{escape(row['primitive'])}</td>{cells}</tr>")
    for item in untimed:
        why = item["perf"].get("error") or item["perf"].get("not_measured") or ""
        rows.append(f"<tr><td><code>{escape(item['case_id'])}</code></td><td>{escape(item['target_id'])}</td>"
                    f'<td colspan="10">not timed: {escape(why)}</td></tr>')
    rows.append("</tbody></table>")
    return rows


def html(report: dict) -> str:
    """The report as one self-contained HTML page."""
    environment, summary = report["environment"], report["summary"]
    targets = list(environment.get("targets") or [])
    for per_target in summary["matrix"].values():
        targets += [target for target in per_target if target not in targets]
    totals = summary["totals"]
    failing = [item for item in report["items"] if item["outcome"] in FAILING]
    known = [item for item in report["items"] if item["outcome"] == "xfailed"]
    ordered = failing + known + [item for item in report["items"] if item["outcome"] not in FAILING + ("xfailed",)]
    environment_rows = "".join(
        f"<tr><th>{escape(str(key))}</th><td>"
        f"{escape(', '.join(map(str, value)) if isinstance(value, list) else str(value))}</td></tr>"
        for key, value in environment.items())
    parts = [
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
        "<title>OpenVINO op conformance</title>", f"<style>{_STYLE}</style></head><body>",
        "<h1>OpenVINO op conformance</h1>",
        f'<p id="totals"><strong>{totals["items"]} items</strong>: '
        + ", ".join(f'<span class="o-{name}">{totals[name]} {name}</span>' for name in OUTCOMES if totals[name])
        + f"; pass rate <strong>{_rate(totals['pass_rate'])}</strong></p>",
        f'<table id="environment"><tbody>{environment_rows}</tbody></table>',
        "<h2>Pass rate, op x target</h2>", *_matrix(summary, targets),
        "<p><small>P passed, F failed, XF expected failure, S skipped, C crashed, H hung. "
        "Pass rate = passed / (items - skipped); implemented = items the device compiled and ran. "
        "Red: an unexpected outcome (failed, XPASS, crashed, hung, error); green: none, expected failures "
        "(known deviations in expected_failures.yaml) included.</small></p>",
        "<h2>Counts</h2>", *_counts(summary), *_cross_target(report.get("cross_target")),
        *_performance(report["items"]),
        f"<h2>Items: {len(failing)} failing, then {len(known)} expected failures, then the rest</h2>",
        *_items(ordered),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
