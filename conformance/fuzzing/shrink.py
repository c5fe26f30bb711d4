"""A greedy shrinker over fuzz parameter dicts (``strategies``): smaller, simpler, same signature.

``shrink(params, still_fails)`` tries one simplification at a time (fewer batch items,
groups and channels, fewer spatial axes, smaller sizes and kernels, strides/dilations
toward 1, pads and output_padding toward 0, no output_shape, explicit auto_pad, f32,
Const kernel, static shapes) and keeps a change when ``still_fails(candidate)`` says the
candidate is valid and fails with the same signature; it repeats until nothing more
shrinks or the budget of checks is spent.
"""
from __future__ import annotations

import copy
import itertools
from typing import Callable, Iterator

PER_AXIS = ("spatial", "kernel", "strides", "dilations", "pads_begin", "pads_end", "output_padding",
            "output_shape")


def size_key(params: dict) -> tuple:
    """An order on parameter dicts: smaller is simpler (used to pick among equal signatures)."""
    channels = params["groups"] * (params["c_in"] + params["c_out"])
    elements = 0
    for shape in [[params["batch"]] + list(params["spatial"])] + list(params.get("dynamic") or []):
        size = channels
        for x in shape:
            size *= x
        elements += size
    return (elements, len(params["spatial"]), params["groups"],
            sum(params["kernel"]), sum(params["strides"]) + sum(params["dilations"]),
            sum(params["pads_begin"]) + sum(params["pads_end"]) + sum(params.get("output_padding") or ()))


def _drop_axis(params: dict, axis: int) -> dict:
    result = copy.deepcopy(params)
    for key in PER_AXIS:
        if result.get(key) is not None:
            del result[key][axis]
    if result.get("dynamic"):
        for shape in result["dynamic"]:
            del shape[1 + axis]
    return result


def _with(params: dict, **changes) -> dict:
    result = copy.deepcopy(params)
    result.update(changes)
    return result


def _smaller_values(value: int, simplest: int) -> list[int]:
    """Candidate values between ``simplest`` and ``value``, simplest first."""
    if value <= simplest:
        return []
    return sorted({simplest, (value + simplest) // 2, value - 1} - {value})


def candidates(params: dict) -> Iterator[dict]:
    """Every one-step simplification of ``params``, the biggest steps first."""
    if params.get("dynamic"):
        yield _with(params, dynamic=None)
        if len(params["dynamic"]) > 1:
            yield _with(params, dynamic=params["dynamic"][:1])
        for index, shape in enumerate(params["dynamic"]):   # the later inferences' shapes toward 1
            for position, value in enumerate(shape):
                for smaller in _smaller_values(value, 1):
                    changed = copy.deepcopy(params)
                    changed["dynamic"][index][position] = smaller
                    yield changed
    rank = len(params["spatial"])
    if rank > 1:
        for axis in reversed(range(rank)):
            yield _drop_axis(params, axis)
    if params.get("output_shape") is not None:
        yield _with(params, output_shape=None, output_shape_input="const")
        if params.get("output_shape_input", "const") != "const":
            yield _with(params, output_shape_input="const")
    if params.get("element_type", "f32") != "f32":
        yield _with(params, element_type="f32")
    if params.get("kernel_input", "const") != "const":
        yield _with(params, kernel_input="const")
    if params["auto_pad"] != "explicit":
        yield _with(params, auto_pad="explicit")
    for key, simplest in (("batch", 1), ("groups", 1), ("c_in", 1), ("c_out", 1)):
        for value in _smaller_values(params[key], simplest):
            yield _with(params, **{key: value})
    if params["groups"] > 2:
        yield _with(params, groups=2)
    for key, simplest in (("spatial", 1), ("kernel", 1), ("strides", 1), ("dilations", 1), ("pads_begin", 0),
                          ("pads_end", 0), ("output_padding", 0)):
        values = params.get(key)
        if not values:
            continue
        for axis, value in enumerate(values):
            for smaller in _smaller_values(value, simplest):
                changed = copy.deepcopy(params)
                changed[key][axis] = smaller
                yield changed
                if key == "spatial" and changed.get("output_shape") is not None:
                    # keep the output_shape's relation to the full result: shrink it by the same amount
                    both = copy.deepcopy(changed)
                    delta = (value - smaller) * params["strides"][axis]
                    both["output_shape"][axis] = max(1, both["output_shape"][axis] - delta)
                    yield both
    if params.get("output_shape") is not None:
        for axis, value in enumerate(params["output_shape"]):
            for smaller in _smaller_values(value, 1):
                changed = copy.deepcopy(params)
                changed["output_shape"][axis] = smaller
                yield changed


def shrink(params: dict, still_fails: Callable[[dict], bool], max_checks: int = 80,
           deadline: Callable[[], bool] | None = None, batch: int = 1,
           all_still_fail: Callable[[list[dict]], list[bool]] | None = None) -> tuple[dict, int]:
    """The simplest parameters reachable greedily for which ``still_fails`` holds, and the checks spent.

    ``still_fails`` must return True only for a valid candidate that fails with the same
    signature as ``params``; ``deadline()`` True stops early (what was reached is returned).
    ``all_still_fail`` (``still_fails`` of each of a list) with ``batch`` > 1: the next ``batch``
    candidates are judged at once (one model for their batchable ones) and the first that still
    fails is kept: the same result and the same count of checks (up to the kept one) as one at a time.
    """
    size = batch if all_still_fail is not None else 1
    judge = all_still_fail if size > 1 else (lambda chunk: [still_fails(candidate) for candidate in chunk])
    current, checks = params, 0
    improved = True
    while improved and checks < max_checks:
        improved = False
        simpler = (candidate for candidate in candidates(current)
                   if size_key(candidate) <= size_key(current) and candidate != current)
        while not improved and checks < max_checks:
            if deadline is not None and deadline():
                return current, checks
            chunk = list(itertools.islice(simpler, min(size, max_checks - checks)))
            if not chunk:
                break
            for candidate, fails in zip(chunk, judge(chunk)):
                checks += 1
                if fails:
                    current, improved = candidate, True
                    break
    return current, checks
