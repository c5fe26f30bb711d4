"""The naive per-case loop: the yardstick of the suite's throughput (issue 14).

    PYTHONPATH=. python benchmarks/naive_loop.py [--cases cases] [--list]

What a per-layer tester without a harness does: for every static f32 case of the default
suite that is not slow and not registered to crash (``selected``), build the op as a one-layer OpenVINO model in memory
(data Parameter -> op -> Result; the kernel and output_shape as Constants, or Parameters
where the case feeds them at inference time), compile it for CPU f32, infer it once on
random data. No IR on disk, no oracle, no comparison, no report. A model OpenVINO refuses
is counted and skipped. ``--list`` prints the suite's item ids of the selected cases
(the pytest selection the suite side of benchmarks/throughput.py runs) instead.
"""
from __future__ import annotations

import argparse
import re
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_TARGET_ID = "CPU-f32"   # the default suite's target (pyproject: CPU, f32)


def selected(cases_dir: Path, registry: Path = ROOT / "expected_failures.yaml") -> list:
    """The default suite's static f32 cases that are not marked slow, in collection order, less
    those the registry expects to crash or hang on CPU-f32 here (a loop without isolation dies
    on them; the suite isolates them)."""
    from conformance import api, expectations
    from conformance.releases import openvino_release
    entries = expectations.load_registry(registry) if registry.is_file() else []
    release, features = openvino_release(), expectations.target_features(None)

    def fatal(case) -> bool:
        known = expectations.match(entries, case.id, DEFAULT_TARGET_ID, release, features)
        return known is not None and known.fails in ("crashed", "hung")
    return [case for case in api.load_cases(cases_dir, cases_dir)
            if not case.dynamic and case.element_type == "f32" and "slow" not in case.marks and not fatal(case)]


def item_ids(cases_dir: Path, cases) -> list[str]:
    """The pytest node ids of ``cases`` on the default target (``<cases dir>/<case id>[CPU-f32]``)."""
    prefix = cases_dir.relative_to(ROOT).as_posix() if cases_dir.is_relative_to(ROOT) else cases_dir.as_posix()
    return [f"{prefix}/{case.id}[{DEFAULT_TARGET_ID}]" for case in cases]


def _build(case, ops):
    """The one-layer model of ``case`` and its feeds (kernel / output_shape fed when the case says)."""
    import openvino as ov

    from conformance import ops as registry
    rng = np.random.default_rng(case.seed)
    data = ops.parameter(list(case.data_shape), np.float32, name="data")
    kernel_values = rng.integers(-3, 4, size=case.kernel_shape).astype(np.float32)
    parameters, feeds = [data], {"data": rng.integers(-3, 4, size=case.data_shape).astype(np.float32)}
    if case.kernel_input == "parameter":
        kernel = ops.parameter(list(case.kernel_shape), np.float32, name="kernel")
        parameters.append(kernel)
        feeds["kernel"] = kernel_values
    else:
        kernel = ops.constant(kernel_values)
    common = dict(strides=list(case.strides), pads_begin=list(case.pads_begin), pads_end=list(case.pads_end),
                  dilations=list(case.dilations), auto_pad=case.auto_pad)
    # opset1's builder of the op: GroupConvolutionBackpropData -> group_convolution_backprop_data.
    builder = getattr(ops, re.sub(r"(?<!^)(?=[A-Z])", "_", case.op).lower())
    if registry.get(case.op).transposed:   # BackpropData ops: output_shape, output_padding
        output_shape = None
        if case.output_shape is not None:
            values = np.array(case.output_shape, dtype=np.int64)
            if case.output_shape_input == "parameter":
                output_shape = ops.parameter([len(values)], np.int64, name="output_shape")
                parameters.append(output_shape)
                feeds["output_shape"] = values
            else:
                output_shape = ops.constant(values)
        node = builder(data, kernel, output_shape=output_shape, output_padding=list(case.output_padding or ()) or None,
                       **common)
    else:
        node = builder(data, kernel, **common)
    return ov.Model([node], parameters, case.id), feeds


def main(argv=None) -> int:
    """Run the loop; print cases, refusals and wall seconds of the loop (imports excluded)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default=str(ROOT / "cases"), help="cases directory (default: cases/)")
    parser.add_argument("--list", action="store_true", help="print the pytest item ids of the selected cases")
    options = parser.parse_args(argv)
    cases_dir = Path(options.cases).resolve()
    cases = selected(cases_dir)
    if options.list:
        print("\n".join(item_ids(cases_dir, cases)))
        return 0
    import openvino as ov
    import openvino.opset1 as ops
    core = ov.Core()
    started = time.perf_counter()
    refused = 0
    for case in cases:
        try:
            model, feeds = _build(case, ops)
            compiled = core.compile_model(model, "CPU", {"INFERENCE_PRECISION_HINT": "f32"})
            compiled.create_infer_request().infer(feeds)
        except RuntimeError:   # a model OpenVINO refuses (registered deviations): nothing to infer
            refused += 1
    print(f"naive loop: {len(cases)} cases, {refused} refused by OpenVINO, "
          f"{time.perf_counter() - started:.2f} s in the loop")
    return 0


if __name__ == "__main__":
    sys.exit(main())
