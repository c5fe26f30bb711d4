"""Writes a report document as JSON with its Markdown and HTML summaries beside it, and merges
shard reports (``merge-reports``): the one place that knows both the model and its renderers."""
from __future__ import annotations

import json
from pathlib import Path

from .html_report import html
from .markdown_report import markdown
from .report import merge_reports, read_report


def write_report(report: dict, json_path: Path | str) -> tuple[Path, Path, Path]:
    """Write ``report`` as JSON, with its Markdown and HTML summaries beside it (``.md``, ``.html``)."""
    json_path = Path(json_path)
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    html_path = json_path.with_suffix(".html")
    html_path.write_text(html(report), encoding="utf-8")
    markdown_path = json_path.with_suffix(".md")
    markdown_path.write_text(markdown(report, html_path.name), encoding="utf-8")
    return json_path, markdown_path, html_path


def merge_files(inputs: list[Path | str], output: Path | str) -> tuple[Path, Path, Path]:
    """Merge shard reports (JSON files) into ``output``, with its Markdown and HTML (``merge-reports``)."""
    output = Path(output)
    documents = [(read_report(path), Path(path).parent) for path in inputs]
    return write_report(merge_reports(documents, output.parent), output)
