"""Result bundles: every item's output + metadata on disk, cross-target diffs, bundle-vs-bundle compare.

A bundle is a directory (``--save-results DIR``)::

    DIR/bundle.json                        machine, CPU model and flags, OpenVINO version, targets
    DIR/items/<case-slug>@<target>.json    case id, op, target, config, primitive, IR and input hashes
    DIR/items/<case-slug>@<target>.npz     output (as returned) and bound (see below), float32

``bound`` is the per-element tolerance the item was held to against the oracle
(``atol_i + rtol*|ref_i|``, see compare.py). Two outputs of the same case that
are each within their bound of the spec's result can differ by at most
``bound_a + bound_b``; a larger difference means at least one of them is wrong,
whichever one the oracle blames. Any nonzero difference is still listed (a
changed kernel shows up even when both results are acceptable); ``--exact``
makes every difference count.

Bundles written on two machines or under two OpenVINO versions are compared
with ``ov-conformance compare-bundles A B``; outputs of different targets in
one run are compared with ``cross_target_diffs`` (in the JSON/Markdown report).
"""
from __future__ import annotations

import hashlib
import itertools
import json
import platform
import re
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

# plugin.py calls bundles.tolerance_bound: the bound stored beside each output is compare's own.
from .compare import tolerance_bound  # noqa: F401

SCHEMA = "openvino-op-conformance-bundle/1"
_ISA_FLAG = re.compile(r"^(sse4_\d|avx\w*|amx\w*|fma|f16c)$")


@lru_cache(maxsize=1)
def cpu_description() -> dict:
    """CPU model and flags from /proc/cpuinfo (the things that pick CPU kernels)."""
    model, flags = platform.processor() or platform.machine(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "model name" and value.strip():
                model = value.strip()
            elif key.strip() in ("flags", "Features") and not flags:
                flags = value.split()
    except OSError:
        pass
    return {"model": model, "flags": sorted(flags), "isa_flags": sorted(f for f in flags if _ISA_FLAG.match(f))}


def inputs_digest(*arrays: np.ndarray) -> str:
    """sha256 over the arrays' dtype, shape and bytes: the identity of what was fed in."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:20]


def _slug(case_id: str) -> str:
    """A filename for a case id: readable, and unique through a short hash of the full id."""
    readable = re.sub(r"[^A-Za-z0-9._=-]+", "_", case_id).strip("_")[-80:]
    return f"{readable}-{hashlib.sha256(case_id.encode()).hexdigest()[:8]}"


def _target_slug(target_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", target_id)


def start_bundle(directory: Path | str, environment: dict, clear: bool = False) -> Path:
    """Create the bundle directory and its ``bundle.json`` (machine, harness version and import path,
    ``environment``); ``clear`` removes earlier items."""
    from .repro import harness_info
    directory = Path(directory)
    items = directory / "items"
    items.mkdir(parents=True, exist_ok=True)
    if clear:
        for stale in items.iterdir():
            if stale.suffix in (".json", ".npz"):
                stale.unlink()
    manifest = {"schema": SCHEMA, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "machine": {"hostname": platform.node(), "system": platform.platform(),
                            "python": platform.python_version(), "cpu": cpu_description()},
                "harness": harness_info(), **environment}
    (directory / "bundle.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return directory


def write_item(directory: Path | str, *, case_id: str, op: str, target, inputs, ir_digest: str, run,
               bound: np.ndarray | None, passed: bool | None, perf: dict | None = None) -> Path:
    """Write one item's output (.npz) and metadata (.json) into bundle ``directory``; returns the .json path.
    ``perf``: the item's timings (``perf.measure``, pytest --perf), compared by ``compare-bundles``."""
    items = Path(directory) / "items"
    items.mkdir(parents=True, exist_ok=True)
    stem = f"{_slug(case_id)}@{_target_slug(target.id)}"
    arrays = {"output": np.asarray(run.output)}
    if bound is not None:
        arrays["bound"] = np.asarray(bound, dtype=np.float32)
    temporary = items / f"{stem}.tmp.npz"
    np.savez_compressed(temporary, **arrays)
    temporary.replace(items / f"{stem}.npz")
    cpu = cpu_description()
    metadata = {
        "case_id": case_id, "op": op, "target_id": target.id, "device": target.device,
        "config": target.config(), "isa_cap": target.isa, "environment": target.environment(),
        "ir_digest": ir_digest, "inputs_digest": inputs_digest(inputs.data, inputs.kernel),
        "output_shape": list(np.shape(run.output)), "output_dtype": str(np.asarray(run.output).dtype),
        "layer_type": run.layer_type, "primitive_type": run.primitive_type,
        "runtime_precision": run.runtime_precision, "inference_precision": run.inference_precision,
        "openvino_version": run.openvino_version, "cpu_model": cpu["model"], "cpu_isa_flags": cpu["isa_flags"],
        "passed_vs_oracle": passed,
    }
    if perf is not None:
        metadata["perf"] = perf
    path = items / f"{stem}.json"
    path.write_text(json.dumps(metadata, indent=2) + "\n", encoding="utf-8")
    return path


@dataclass(frozen=True)
class BundleItem:
    """One item of a bundle on disk (metadata loaded; arrays on demand)."""

    metadata: dict
    npz_path: Path

    @property
    def key(self) -> tuple[str, str]:
        return self.metadata["case_id"], self.metadata["target_id"]

    def arrays(self) -> tuple[np.ndarray, np.ndarray | None]:
        with np.load(self.npz_path) as data:
            return data["output"], data["bound"] if "bound" in data.files else None


class BundleError(Exception):
    """A bundle directory that cannot be read (the message names the path)."""


def load_bundle(directory: Path | str) -> tuple[dict, dict[tuple[str, str], BundleItem]]:
    """``(manifest, {(case_id, target_id): BundleItem})`` of a bundle directory."""
    directory = Path(directory)
    manifest_path = directory / "bundle.json"
    try:
        manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise BundleError(f"{manifest_path}: not a result bundle ({error})") from None
    items = {}
    for path in sorted((directory / "items").glob("*.json")):
        try:
            metadata = json.loads(path.read_text(encoding="utf-8"))
        except ValueError as error:
            raise BundleError(f"{path}: unreadable item metadata ({error})") from None
        item = BundleItem(metadata, path.with_suffix(".npz"))
        items[item.key] = item
    return manifest, items


@dataclass(frozen=True)
class Difference:
    """How two outputs of one case differ."""

    case_id: str
    a: str                      # target id (or bundle label) of side a
    b: str
    max_abs_diff: float         # inf if shapes differ or a NaN appears on one side only
    differing: int              # elements that differ at all
    beyond: int                 # elements with |a-b| > bound_a + bound_b (or > 0 with exact)
    total: int
    note: str = ""
    primitive_a: str | None = None
    primitive_b: str | None = None

    @property
    def beyond_tolerance(self) -> bool:
        return self.beyond > 0


def diff_outputs(case_id: str, a: str, b: str, output_a: np.ndarray, output_b: np.ndarray,
                 bound_a: np.ndarray | None, bound_b: np.ndarray | None, exact: bool = False,
                 primitive_a: str | None = None, primitive_b: str | None = None) -> Difference:
    """Compare two outputs of the same case element by element."""
    common = dict(case_id=case_id, a=a, b=b, primitive_a=primitive_a, primitive_b=primitive_b)
    if np.shape(output_a) != np.shape(output_b):
        return Difference(**common, max_abs_diff=float("inf"), differing=-1, beyond=1, total=int(np.size(output_a)),
                          note=f"shapes differ: {list(np.shape(output_a))} vs {list(np.shape(output_b))}")
    left, right = np.asarray(output_a, np.float64), np.asarray(output_b, np.float64)
    both_nan = np.isnan(left) & np.isnan(right)
    difference = np.where(both_nan, 0.0, np.abs(left - right))
    difference = np.where(np.isnan(difference), np.inf, difference)  # NaN on one side only
    if exact or bound_a is None or bound_b is None:
        allowed = np.zeros_like(difference)
    else:
        allowed = np.asarray(bound_a, np.float64) + np.asarray(bound_b, np.float64)
    return Difference(**common, max_abs_diff=float(difference.max()) if difference.size else 0.0,
                      differing=int(np.count_nonzero(difference)),
                      beyond=int(np.count_nonzero(difference > allowed)), total=int(difference.size),
                      note="exact" if exact or bound_a is None or bound_b is None else "")


def _diff_items(case_id: str, item_a: BundleItem, item_b: BundleItem, exact: bool = False,
                arrays_a: tuple | None = None, arrays_b: tuple | None = None) -> Difference:
    """``diff_outputs`` of two bundle items of ``case_id`` (``arrays_*``: their ``arrays()`` if already loaded)."""
    (output_a, bound_a), (output_b, bound_b) = arrays_a or item_a.arrays(), arrays_b or item_b.arrays()
    return diff_outputs(case_id, item_a.metadata["target_id"], item_b.metadata["target_id"], output_a, output_b,
                        bound_a, bound_b, exact, item_a.metadata.get("primitive_type"),
                        item_b.metadata.get("primitive_type"))


def _worst_first(difference: Difference) -> tuple:
    return -difference.beyond, -difference.max_abs_diff, difference.case_id


def cross_target_diffs(directory: Path | str) -> list[Difference]:
    """Every pair of targets that ran the same case (same IR and inputs) in one bundle."""
    _, items = load_bundle(directory)
    by_case: dict[str, list[BundleItem]] = {}
    for (case_id, _), item in sorted(items.items()):
        by_case.setdefault(case_id, []).append(item)
    differences = []
    for case_id, runs in by_case.items():
        loaded = [(item, item.arrays()) for item in runs]
        for (item_a, arrays_a), (item_b, arrays_b) in itertools.combinations(loaded, 2):
            if item_a.metadata["inputs_digest"] != item_b.metadata["inputs_digest"]:
                continue  # a different element type renders different inputs: not the same question
            differences.append(_diff_items(case_id, item_a, item_b, arrays_a=arrays_a, arrays_b=arrays_b))
    return differences


def summarize_differences(differences: list[Difference], listed: int = 20) -> dict:
    """JSON-ready cross-target section: per target pair totals, and per case the max difference."""
    pairs: dict[str, dict] = {}
    for difference in differences:
        pair = pairs.setdefault(f"{difference.a} vs {difference.b}", {
            "cases": 0, "identical": 0, "differing": 0, "beyond_tolerance": 0, "max_abs_diff": 0.0})
        pair["cases"] += 1
        pair["identical"] += difference.differing == 0
        pair["differing"] += difference.differing != 0
        pair["beyond_tolerance"] += difference.beyond_tolerance
        pair["max_abs_diff"] = max(pair["max_abs_diff"], difference.max_abs_diff)
    per_case: dict[str, dict] = {}
    for difference in differences:
        entry = per_case.setdefault(difference.case_id, {"max_abs_diff": 0.0, "beyond_tolerance": False, "pairs": {}})
        entry["pairs"][f"{difference.a} vs {difference.b}"] = difference.max_abs_diff
        entry["max_abs_diff"] = max(entry["max_abs_diff"], difference.max_abs_diff)
        entry["beyond_tolerance"] |= difference.beyond_tolerance
    ranked = sorted((d for d in differences if d.differing), key=_worst_first)
    largest = [{**asdict(d), "max_abs_diff": _json_number(d.max_abs_diff)} for d in ranked[:listed]]
    for pair in pairs.values():
        pair["max_abs_diff"] = _json_number(pair["max_abs_diff"])
    for entry in per_case.values():
        entry["max_abs_diff"] = _json_number(entry["max_abs_diff"])
        entry["pairs"] = {pair: _json_number(value) for pair, value in entry["pairs"].items()}
    return {"pairs": pairs, "cases": per_case, "largest": largest}


def _json_number(value: float) -> float | None:
    """JSON has no infinity: a shape mismatch or a one-sided NaN (max diff inf) is written as null."""
    return value if np.isfinite(value) else None


def compare_bundles(a: Path | str, b: Path | str, exact: bool = False, target_a: str | None = None,
                    target_b: str | None = None) -> tuple[list[Difference], list[str]]:
    """Differences between matching items of bundles ``a`` and ``b``, and notes on unmatched items.

    Items match by (case id, target id); with ``target_a``/``target_b`` the
    items of target ``target_a`` in ``a`` are matched with those of ``target_b``
    in ``b`` (a plugin's bundle against a CPU bundle).
    """
    _, items_a = load_bundle(a)
    _, items_b = load_bundle(b)
    if target_a or target_b:
        items_a = {case: item for (case, target), item in items_a.items() if target == (target_a or target_b)}
        items_b = {case: item for (case, target), item in items_b.items() if target == (target_b or target_a)}
    notes = []
    only_a, only_b = sorted(set(items_a) - set(items_b)), sorted(set(items_b) - set(items_a))
    if only_a:
        notes.append(f"{len(only_a)} item(s) only in {a}, e.g. {_key_text(only_a[0])}")
    if only_b:
        notes.append(f"{len(only_b)} item(s) only in {b}, e.g. {_key_text(only_b[0])}")
    differences = []
    for key in sorted(set(items_a) & set(items_b)):
        item_a, item_b = items_a[key], items_b[key]
        case_id = key[0] if isinstance(key, tuple) else key
        if item_a.metadata["inputs_digest"] != item_b.metadata["inputs_digest"]:
            notes.append(f"{_key_text(key)}: inputs differ between the bundles (case changed?); not compared")
            continue
        differences.append(_diff_items(case_id, item_a, item_b, exact))
    return differences, notes


def _key_text(key) -> str:
    return f"{key[0]} [{key[1]}]" if isinstance(key, tuple) else str(key)


def difference_table(differences: list[Difference], only_beyond: bool = False) -> str:
    """A plain-text table of the differing cases (worst first)."""
    shown = [d for d in differences if (d.beyond_tolerance if only_beyond else d.differing)]
    shown.sort(key=_worst_first)
    if not shown:
        return ""
    rows = [("case", "a", "b", "max |a-b|", "beyond tol", "differing", "primitive a / b")]
    for d in shown:
        rows.append((d.case_id, d.a, d.b, f"{d.max_abs_diff:.6g}",
                     f"{d.beyond}/{d.total}", f"{d.differing}/{d.total}" if d.differing >= 0 else d.note,
                     f"{d.primitive_a} / {d.primitive_b}"))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(str(cell).ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)


def performance_pairs(a: Path | str, b: Path | str, target_a: str | None = None,
                      target_b: str | None = None) -> list[tuple[str, str, dict | None, dict | None]]:
    """``(case_id, target_id, perf_a, perf_b)`` of the items both bundles hold (matched as
    ``compare_bundles`` matches them), for ``perf.slowdowns``; a side without timings is None."""
    _, items_a = load_bundle(a)
    _, items_b = load_bundle(b)
    pairs = []
    for (case_id, target), item_a in sorted(items_a.items()):
        if target_a or target_b:
            if target != (target_a or target_b):
                continue
            item_b = items_b.get((case_id, target_b or target_a))
        else:
            item_b = items_b.get((case_id, target))
        if item_b is not None:
            pairs.append((case_id, target, item_a.metadata.get("perf"), item_b.metadata.get("perf")))
    return pairs


def compare_bundles_command(a: str, b: str, exact: bool = False, target_a: str | None = None,
                            target_b: str | None = None, show_all: bool = False, out=None,
                            perf_threshold: float | None = None, perf_min_ms: float | None = None) -> int:
    """``ov-conformance compare-bundles``: print the table; 1 if any case differs beyond tolerance
    or (items timed with ``pytest --perf`` on both sides) ran slower beyond ``perf_threshold``."""
    import sys
    from . import perf
    out = out or sys.stdout
    try:
        manifest_a, manifest_b = load_bundle(a)[0], load_bundle(b)[0]
        differences, notes = compare_bundles(a, b, exact, target_a, target_b)
        pairs = performance_pairs(a, b, target_a, target_b)
    except BundleError as error:
        print(f"error: {error}", file=out)
        return 2
    for label, path, manifest in (("a", a, manifest_a), ("b", b, manifest_b)):
        cpu = manifest.get("machine", {}).get("cpu", {})
        print(f"{label}: {path}  OpenVINO {manifest.get('openvino_version')}  "
              f"{manifest.get('machine', {}).get('hostname')}  {cpu.get('model')}", file=out)
    beyond = [d for d in differences if d.beyond_tolerance]
    differing = [d for d in differences if d.differing]
    rule = "any difference" if exact else "|a-b| > bound_a + bound_b (each side's tolerance vs the oracle)"
    print(f"{len(differences)} item(s) compared; {len(differing)} differ at all; "
          f"{len(beyond)} beyond tolerance ({rule})", file=out)
    table = difference_table(differences, only_beyond=not show_all)
    if table:
        print(table, file=out)
    changed = [d for d in differences if d.primitive_a != d.primitive_b]
    if changed:
        kinds = sorted({f"{d.primitive_a} -> {d.primitive_b}" for d in changed})
        print(f"{len(changed)} item(s) ran a different primitive: {'; '.join(kinds[:10])}", file=out)
        if show_all:
            for d in changed:
                print(f"  {d.case_id} [{d.a} / {d.b}]: {d.primitive_a} -> {d.primitive_b}", file=out)
    threshold = perf.DEFAULT_THRESHOLD if perf_threshold is None else perf_threshold
    changes, perf_notes = perf.slowdowns(pairs, threshold,
                                         perf.DEFAULT_MIN_LATENCY_MS if perf_min_ms is None else perf_min_ms)
    regressions = [change for change in changes if change.regression]
    if changes:
        print(f"performance: {len(changes)} item(s) timed in both; {len(regressions)} regression(s) "
              f"(OpenVINO > {threshold:g}x slower by median and by min, beyond both runs' spread, "
              f"and not matched by torch's slowdown)", file=out)
        table = perf.slowdown_table(changes)
        if table:
            print(table, file=out)
        unproven = [change for change in changes if not change.regression and change.ratio > threshold]
        for change in unproven[:None if show_all else 10]:
            print(f"  not flagged: {change.case_id} [{change.target_id}] {change.ratio:.2f}x slower by median: "
                  f"{change.note}", file=out)
        if len(unproven) > 10 and not show_all:
            print(f"  ... and {len(unproven) - 10} more not flagged (--all lists them)", file=out)
    for note in notes + (perf_notes if any(p[2] or p[3] for p in pairs) else []):
        print(f"note: {note}", file=out)
    if not differences:
        print("error: no items in common", file=out)
        return 2
    return 1 if beyond or regressions else 0
