"""Repro bundles: everything needed to reproduce one failing item outside the harness.

A bundle is a directory (one per case x target) holding

* ``model.xml``/``model.bin``  the rendered IR exactly as it ran;
* ``data.npy`` (and ``data.bin``, raw, for benchmark_app), ``kernel.npy``;
* ``expected.npy`` (the spec's float64 output), ``bound.npy`` (the per-element
  tolerance), ``actual.npy`` (the device's output; absent if the run crashed or hung);
* ``config.json``  the case, the target, the compile properties, the environment
  (e.g. ``ONEDNN_MAX_CPU_ISA``), the OpenVINO version, the tolerance and the verdict;
* ``reproduce.py`` a short script needing only openvino and numpy, and
  ``command.txt``: the one-line commands (that script, and a ``benchmark_app`` line).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
from dataclasses import asdict
from pathlib import Path

import numpy as np

from .case import Case
from .compare import tolerance_bound, tolerance_for
from .inputs import Inputs
from .oracle import Reference
from .render import RenderedIR
from .report import json_safe
from .runtime import Target, openvino_version

# Environment variables that change which kernels run; read by oneDNN at process start.
KERNEL_ENVIRONMENT = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE")

_SCRIPT = '''\
"""Reproduce {case_id} on {target_id} outside the harness: python {{this file}}

Needs only openvino and numpy. Exit status 1 when the output is outside the spec's tolerance."""
import json
import os
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
config = json.loads((here / "config.json").read_text())
os.environ.update(config["environment"])  # before OpenVINO loads: oneDNN reads these at start

import numpy as np
import openvino as ov

core = ov.Core()
model = core.read_model(here / "model.xml", here / "model.bin")
compiled = core.compile_model(model, config["target"]["device"], config["target"]["compile_properties"])
actual = compiled({{"{input_name}": np.load(here / "data.npy")}})[compiled.output(0)]
expected, bound = np.load(here / "expected.npy"), np.load(here / "bound.npy")
print(f"OpenVINO {{ov.get_version()}}, {{config['target']['id']}}: output shape {{list(actual.shape)}}, "
      f"the spec says {{list(expected.shape)}}")
if actual.shape != expected.shape:
    sys.exit(1)
error = np.abs(actual.astype(np.float64) - expected)
bad = ~(error <= bound)
worst = np.unravel_index(int(np.argmax(np.where(np.isnan(error), np.inf, error))), error.shape)
print(f"{{int(bad.sum())}} of {{bad.size}} elements outside the tolerance; worst at {{list(map(int, worst))}}: "
      f"expected {{expected[worst]:.9g}}, got {{actual[worst]:.9g}}, allowed {{bound[worst]:.3g}}")
sys.exit(1 if bad.any() else 0)
'''


def bundle_name(case_id: str, target_id: str) -> str:
    """A readable, filesystem-safe, collision-free directory name for one item."""
    readable = re.sub(r"[^A-Za-z0-9._=-]+", "_", f"{case_id}[{target_id}]").strip("_")[:100]
    digest = hashlib.sha256(f"{case_id}\0{target_id}".encode()).hexdigest()[:8]
    return f"{readable}-{digest}"


def kernel_environment(target: Target) -> dict[str, str]:
    """The kernel-selecting environment the item ran under (the process's, plus the target's own)."""
    environment = {key: os.environ[key] for key in KERNEL_ENVIRONMENT if key in os.environ}
    environment.update(target.environment())
    return environment


def write_bundle(directory: Path | str, case: Case, inputs: Inputs, expected: Reference | None, target: Target,
                 ir: RenderedIR, actual: np.ndarray | None = None, outcome: str = "failed",
                 message: str = "") -> Path:
    """Write the repro bundle for ``case`` on ``target`` under ``directory``; return its path.

    ``actual`` is the device's output (None when the run crashed or hung);
    ``expected`` is None for streamed (full-size) cases: no expected.npy/bound.npy then;
    ``message`` the failure text the harness reported.
    """
    bundle = Path(directory) / bundle_name(case.id, target.id)
    bundle.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(ir.xml_path, bundle / "model.xml")
    shutil.copyfile(ir.bin_path, bundle / "model.bin")
    np.save(bundle / "data.npy", inputs.data)
    inputs.data.tofile(bundle / "data.bin")
    np.save(bundle / "kernel.npy", inputs.kernel)
    tolerance = tolerance_for(target.precision, case.geometry().accumulation_length, inputs.data, inputs.kernel)
    if expected is not None:
        np.save(bundle / "expected.npy", expected.output)
        np.save(bundle / "bound.npy", tolerance_bound(expected.output, expected.magnitude, tolerance))
    # else: a streamed (full-size) case; its oracle never existed whole (conformance.oracle.reference_slabs)
    if actual is not None:
        np.save(bundle / "actual.npy", actual)
    elif (bundle / "actual.npy").exists():
        (bundle / "actual.npy").unlink()  # left from an earlier run that got an output
    environment = kernel_environment(target)
    properties = target.config()
    (bundle / "benchmark_app.json").write_text(json.dumps({target.device: properties}, indent=2) + "\n")
    config = {
        "case": json_safe({key: value for key, value in asdict(case).items() if key != "source"})
                | {"source": str(case.source)},
        "target": {"id": target.id, "device": target.device, "precision": target.precision,
                   "compile_properties": properties},
        "environment": environment,
        "openvino_version": openvino_version(),
        "ir_digest": ir.digest,
        "input_name": ir.input_name,
        "tolerance": {"description": tolerance.describe(), "rtol": tolerance.rtol, "atol_scale": tolerance.atol_scale},
        "outcome": outcome,
        "message": message,
    }
    (bundle / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (bundle / "reproduce.py").write_text(_SCRIPT.format(case_id=case.id, target_id=target.id,
                                                        input_name=ir.input_name))
    (bundle / "command.txt").write_text("\n".join(commands(bundle, target, ir.input_name, environment)) + "\n")
    return bundle


def commands(bundle: Path, target: Target, input_name: str, environment: dict[str, str]) -> list[str]:
    """The one-line commands reproducing the item: the Python script, and benchmark_app on the same IR."""
    prefix = "".join(f"{key}={value} " for key, value in sorted(environment.items()))
    return [
        f"{prefix}python {bundle / 'reproduce.py'}",
        f"{prefix}benchmark_app -m {bundle / 'model.xml'} -d {target.device} -load_config {bundle / 'benchmark_app.json'}"
        f" -i {input_name}:{bundle / 'data.bin'} -niter 1 -nireq 1 -hint none -api sync",
    ]
