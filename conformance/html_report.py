"""The HTML summary page: one self-contained file (inline CSS, no scripts, no network).

Layout follows OpenVINO's own conformance summary: a matrix op x target whose
cells show the pass rate and the counts behind it, then the counts table, then
one row per item with its errors, tolerance, kernel primitive and repro link.
Everything is escaped; the output is a pure function of the report (no clock).
"""
from __future__ import annotations

from html import escape

from .report import COUNT_COLUMNS, FAILING, OUTCOMES, headline

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
            f"<td>{tolerance}</td><td>{escape(run.get('primitive_type') or '')}{_post_ops(run)}</td>"
            f"<td>{escape(run.get('runtime_precision') or '')}</td><td>{repro}</td><td>{details}</td></tr>")
    rows.append("</tbody></table>")
    return rows


def _post_ops(run: dict) -> str:
    """The primitive cell's post-op line: which post-ops ran fused into it (+) or as their own node (-)."""
    record = run.get("post_ops")
    if not record:
        return ""
    marks = [f"+{label}" for label in record["fused"]] + [f"-{label}" for label in record["not_fused"]]
    return (f'<br><small class="post-ops" title="post-ops: + fused into the primitive, - run as their own node">'
            f'post-ops: {escape(" ".join(marks))}</small>')


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
        f"<h2>Items: {len(failing)} failing, then {len(known)} expected failures, then the rest</h2>",
        *_items(ordered),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"
