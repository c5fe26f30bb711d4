"""The performance view (``pytest --perf``): how fast OpenVINO runs each passed item, next to torch.

Per passed item, after its verdict (timing never enters a verdict):

- **OpenVINO**: the item's own single-case IR, compiled with the target's properties plus
  ``INFERENCE_NUM_THREADS`` = ``PerfSettings.threads`` (set explicitly, read back and recorded),
  inferred ``warmup`` times unmeasured, then timed one inference at a time: at least
  ``min_repeats`` times and on until ``budget_seconds`` are spent (at most ``max_repeats``).
  It runs where the item's check ran: in the worker process (isolated runs, ISA caps) or here.
- **torch**: the same computation in float32 (the oracle's torch formulation of the op,
  ``oracle.apply_op``, on the item's inputs cast to float32) with ``torch.set_num_threads(threads)``,
  warmed up and repeated the same way.
- **work**: ``2 x multiply-adds`` in GFLOP, from the op's geometry (``Op.multiply_adds``:
  accumulation length x output elements for a convolution; data elements x C_OUT per group x
  kernel volume for a transposed one), and GFLOP/s at OpenVINO's median latency.

The record (``measure``) is the report item's ``perf`` and the result bundle item's ``perf``::

    {latency_ms, min_ms, q1_ms, q3_ms, spread, repeats,          # OpenVINO: median, quartiles, IQR/median
     torch_latency_ms, torch_min_ms, torch_q1_ms, torch_q3_ms, torch_spread, torch_repeats,
     ratio,                                                     # OpenVINO median / torch median
     gflops, gflops_per_s, threads, warmup, budget_seconds, cpu_model, isa_cap}

``slowdowns`` compares two bundles' records (``ov-conformance compare-bundles``); its noise rule is
in ``regression``'s docstring; ``not_comparable`` says why two records cannot be compared at all.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, replace

import numpy as np

from . import cpu, ops, runtime, worker
from .settings import PerfSettings  # noqa: F401 (re-exported)

# A case output above this many elements is a full-size (streamed) item: not timed (minutes a run).
NOT_MEASURED_STREAMED = "streamed (full-size) item: not timed"


@dataclass(frozen=True)
class Timings:
    """Seconds of each timed call, in the order they ran."""

    samples: tuple[float, ...]

    def summary(self, prefix: str = "") -> dict:
        """Median, min and quartiles in milliseconds, the relative spread (IQR / median) and the count."""
        ordered = sorted(self.samples)
        q1, median, q3 = (statistics.quantiles(ordered, n=4, method="inclusive") if len(ordered) > 1
                          else (ordered[0],) * 3)
        return {f"{prefix}latency_ms": _ms(median), f"{prefix}min_ms": _ms(ordered[0]),
                f"{prefix}q1_ms": _ms(q1), f"{prefix}q3_ms": _ms(q3),
                f"{prefix}spread": round((q3 - q1) / median, 4) if median > 0 else 0.0,
                f"{prefix}repeats": len(ordered)}


def _ms(seconds: float) -> float:
    return round(seconds * 1000.0, 6)


def time_repeats(call, settings: PerfSettings) -> Timings:
    """``call()`` ``warmup`` times unmeasured, then timed: at least ``min_repeats`` calls and on
    until ``budget_seconds`` have passed (at most ``max_repeats``)."""
    for _ in range(settings.warmup):
        call()
    samples = []
    started = time.perf_counter()
    while len(samples) < settings.min_repeats or (
            len(samples) < settings.max_repeats and time.perf_counter() - started < settings.budget_seconds):
        before = time.perf_counter()
        call()
        samples.append(time.perf_counter() - before)
    return Timings(tuple(samples))


def openvino_latency(ir, feed: dict, target, settings: PerfSettings) -> dict:
    """OpenVINO's timings of one inference of ``ir`` on ``feed`` (``Timings.summary``) and the thread
    count the compiled model reports. Runs in the process OpenVINO runs in (``measure`` sends it to
    the item's worker when the check ran in one)."""
    threaded = replace(target, properties=tuple(target.properties) + (
        ("INFERENCE_NUM_THREADS", str(settings.threads)),))
    # The same compile (and cache of compiled models) as the check's run, with the thread count added.
    compiled = runtime._compile(ir, threaded, "op")[0]
    request = compiled.create_infer_request()
    tensors = {name: runtime._as_tensor(np.ascontiguousarray(array),
                                        ir.element_type if name != "output_shape" else "i64")
               for name, array in feed.items()}
    sharing = runtime._sharing_inputs(request)
    timings = time_repeats(lambda: request.infer(tensors, **sharing), settings)
    try:
        threads = int(compiled.get_property("INFERENCE_NUM_THREADS"))
    except (RuntimeError, TypeError, ValueError):
        threads = settings.threads
    return {**timings.summary(), "threads": threads}


def torch_latency(case, inputs, settings: PerfSettings) -> dict:
    """torch's timings (``Timings.summary``, keys prefixed ``torch_``) of ``case``'s op on ``inputs``
    in float32, on ``settings.threads`` threads (the previous count is restored)."""
    import torch   # here, not at module level: see oracle.py
    from .oracle import apply_op
    geometry = case.geometry()
    previous = torch.get_num_threads()
    torch.set_num_threads(settings.threads)
    try:
        with torch.no_grad():
            data = torch.from_numpy(np.ascontiguousarray(inputs.data, dtype=np.float32))
            kernel = torch.from_numpy(np.ascontiguousarray(inputs.kernel, dtype=np.float32))
            timings = time_repeats(lambda: apply_op(case, data, kernel, geometry, keep_threads=True), settings)
    finally:
        torch.set_num_threads(previous)
    return timings.summary("torch_")


def gflop(case) -> float:
    """The work of one inference of ``case`` in GFLOP: 2 x ``Op.multiply_adds``."""
    return 2.0 * ops.get(case.op).multiply_adds(case, case.geometry()) / 1e9


def measure(outcome, target, settings: PerfSettings, feed: dict | None, *, isolate: bool = False,
            timeout: float = worker.DEFAULT_TIMEOUT) -> dict:
    """The ``perf`` record of a passed item (``outcome``: its ``api.Outcome``; ``feed``: what its first
    inference is fed, ``api.feeds``), or ``{"not_measured": reason}``. Never raises for a timing
    problem: an error while timing is the record's ``error`` (a passed item stays passed)."""
    if outcome.streamed or not outcome.steps or feed is None:
        return {"not_measured": NOT_MEASURED_STREAMED}
    step = outcome.steps[0]   # a dynamic case: its first inference's shape
    case = outcome.case.at_data_shape(step.data_shape) if outcome.case.dynamic else outcome.case
    record = {"threads": settings.threads, "warmup": settings.warmup, "budget_seconds": settings.budget_seconds,
              "cpu_model": cpu.this_cpu().model, "isa_cap": cpu.target_cap(target.isa)}
    try:
        if isolate or worker.needs_worker(target):
            result = worker.call(openvino_latency, outcome.ir, feed, target, settings,
                                 env=target.environment(), timeout=timeout)
            if isinstance(result, worker.WorkerFailure):
                return {**record, "error": result.describe().splitlines()[0]}
        else:
            result = openvino_latency(outcome.ir, feed, target, settings)
        result.update(torch_latency(case, step.inputs, settings))
    except Exception as error:   # noqa: BLE001 - timing must never turn a verdict
        first_line = (str(error).strip().splitlines() or [""])[0]
        return {**record, "error": f"{type(error).__name__}: {first_line}"}
    work = gflop(case)
    record.update(result)   # threads: as the compiled model reports it
    record.update(gflops=round(work, 9),
                  gflops_per_s=round(work / (record["latency_ms"] / 1000.0), 4) if record["latency_ms"] > 0 else None,
                  ratio=round(record["latency_ms"] / record["torch_latency_ms"], 4)
                  if record["torch_latency_ms"] > 0 else None)
    return {key: record[key] for key in _ORDER if key in record}


_ORDER = ("latency_ms", "min_ms", "q1_ms", "q3_ms", "spread", "repeats",
          "torch_latency_ms", "torch_min_ms", "torch_q1_ms", "torch_q3_ms", "torch_spread", "torch_repeats",
          "ratio", "gflops", "gflops_per_s", "threads", "warmup", "budget_seconds", "cpu_model", "isa_cap",
          "error", "not_measured")


# --- comparing two runs (compare-bundles) ------------------------------------------------

DEFAULT_THRESHOLD = 1.5        # a slowdown beyond this factor is a regression
DEFAULT_MIN_LATENCY_MS = 0.1   # below this on both sides, latency is call overhead and timer noise


def timed(record: dict | None) -> bool:
    """True when ``record`` holds timings (not an error or a not-measured note)."""
    return bool(record) and "latency_ms" in record


def not_comparable(a: dict | None, b: dict | None) -> str | None:
    """Why the timings of two records of one item cannot be compared, or None: one side untimed,
    different CPU models, thread counts or ISA caps (a kernel of another ISA is another program)."""
    for label, record in (("A", a), ("B", b)):
        if not timed(record):
            why = (record or {}).get("error") or (record or {}).get("not_measured") or "run without --perf"
            return f"no timings in {label} ({why})"
    if a.get("cpu_model") != b.get("cpu_model"):
        return f"different CPU models ({a.get('cpu_model')} vs {b.get('cpu_model')}): latencies of two machines"
    if a.get("threads") != b.get("threads"):
        return f"different thread counts ({a.get('threads')} vs {b.get('threads')})"
    if a.get("isa_cap") != b.get("isa_cap"):
        return f"different ISA caps ({a.get('isa_cap') or 'none'} vs {b.get('isa_cap') or 'none'})"
    return None


@dataclass(frozen=True)
class Slowdown:
    """OpenVINO's latency of one item in run B against run A."""

    case_id: str
    target_id: str
    ratio: float              # B median / A median
    min_ratio: float          # B min / A min
    torch_ratio: float | None  # the same for torch (the machine control), None without torch timings
    latency_a_ms: float
    latency_b_ms: float
    regression: bool
    note: str = ""


def regression(case_id: str, target_id: str, a: dict, b: dict, threshold: float = DEFAULT_THRESHOLD,
               min_latency_ms: float = DEFAULT_MIN_LATENCY_MS) -> Slowdown:
    """B's OpenVINO latency against A's for one item (both ``timed`` and comparable). Noise rule:
    a regression needs all of

    - a median slowdown above ``threshold`` and a min-of-repeats slowdown above it too (a loaded
      machine inflates medians more than minimums);
    - B's first quartile above A's third: the slowdown is beyond both runs' spread;
    - A's or B's median at or above ``min_latency_ms`` (below, per-call overhead and the clock dominate);
    - OpenVINO slower relative to torch as well: when torch (same machine, same threads, measured
      in the same run) slowed by the threshold too, the machine was slower, not OpenVINO.
    """
    ratio = b["latency_ms"] / a["latency_ms"] if a["latency_ms"] > 0 else float("inf")
    min_ratio = b["min_ms"] / a["min_ms"] if a["min_ms"] > 0 else float("inf")
    torch_ratio = (b["torch_latency_ms"] / a["torch_latency_ms"]
                   if a.get("torch_latency_ms") and b.get("torch_latency_ms") else None)
    note = ""
    if ratio <= threshold:
        note = "within the threshold"
    elif min_ratio <= threshold:
        note = f"minimums slowed {min_ratio:.2f}x only (noise)"
    elif b["q1_ms"] <= a["q3_ms"]:
        note = "within the runs' spread (B's first quartile <= A's third)"
    elif max(a["latency_ms"], b["latency_ms"]) < min_latency_ms:
        note = f"below {min_latency_ms:g} ms (call overhead)"
    elif torch_ratio is not None and torch_ratio > threshold:
        note = f"torch slowed {torch_ratio:.2f}x too: the machine, not OpenVINO"
    return Slowdown(case_id, target_id, ratio, min_ratio, torch_ratio, a["latency_ms"], b["latency_ms"],
                    regression=not note, note=note)


def slowdowns(pairs, threshold: float = DEFAULT_THRESHOLD,
              min_latency_ms: float = DEFAULT_MIN_LATENCY_MS) -> tuple[list[Slowdown], list[str]]:
    """``regression`` for every ``(case_id, target_id, record_a, record_b)`` whose records compare,
    and one line per reason that kept items from being compared (with a count and an example)."""
    compared, refused = [], {}
    for case_id, target_id, a, b in pairs:
        reason = not_comparable(a, b)
        if reason is None:
            compared.append(regression(case_id, target_id, a, b, threshold, min_latency_ms))
        else:
            refused.setdefault(reason, []).append(f"{case_id} [{target_id}]")
    notes = [f"performance not compared for {len(items)} item(s): {reason} (e.g. {items[0]})"
             for reason, items in refused.items()]
    return compared, notes


def slowdown_table(changes: list[Slowdown]) -> str:
    """A plain-text table of the regressions, worst first."""
    shown = sorted((change for change in changes if change.regression), key=lambda c: (-c.ratio, c.case_id))
    if not shown:
        return ""
    rows = [("case", "target", "A ms", "B ms", "B/A median", "B/A min", "torch B/A")]
    for change in shown:
        rows.append((change.case_id, change.target_id, f"{change.latency_a_ms:.4g}", f"{change.latency_b_ms:.4g}",
                     f"{change.ratio:.2f}x", f"{change.min_ratio:.2f}x",
                     "-" if change.torch_ratio is None else f"{change.torch_ratio:.2f}x"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows)
