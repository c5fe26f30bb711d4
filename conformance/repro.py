"""Repro bundles: everything needed to reproduce one failing item outside the harness.

A bundle is a directory (one per case x target) holding

* ``model.xml``/``model.bin``  the rendered IR exactly as it ran;
* one ``<input>.npy`` per input the IR declares (``data.npy``; ``kernel.npy`` and
  ``output_shape.npy`` when they are runtime Parameters; ``kernel.npy`` is written
  for a Const kernel too, for reading), and ``data.bin`` (raw, for benchmark_app);
* ``expected.npy`` (the spec's float64 output), ``bound.npy`` (the per-element
  tolerance the verdict used, ``compare.tolerance_bound`` of the verdict's
  ``Tolerance``: never recomputed differently), ``actual.npy`` (the device's output;
  absent if the run crashed, hung or was rejected);
* ``config.json``  the case, the target, the compile properties, the environment
  (e.g. ``ONEDNN_MAX_CPU_ISA``), the OpenVINO version, the harness version and where
  it was imported from, the tolerance's fields and the verdict the harness reported;
* ``reproduce.py`` a short script needing only openvino and numpy, and
  ``command.txt``: the one-line commands (that script, and a ``benchmark_app`` line).

``reproduce.py`` exits 1 when OpenVINO's output is outside the stored bound, or when
OpenVINO fails to compile or infer the model (it prints the error), 0 when the output
is within the bound, 2 when it cannot decide (a streamed item: no expected output).
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import asdict
from functools import lru_cache
from pathlib import Path

import numpy as np

from .case import Case
from .compare import Tolerance, tolerance_bound, tolerance_for
from .inputs import Inputs
from .oracle import Reference
from .render import DATA_INPUT_NAME, RenderedIR
from .report import json_safe
from .runtime import Target, openvino_version

# Environment variables that change which kernels run; read by oneDNN at process start.
KERNEL_ENVIRONMENT = ("ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ONEDNN_DEFAULT_FPMATH_MODE")
DISTRIBUTION = "openvino-op-conformance"

_SCRIPT = '''\
"""Reproduce {case_id} on {target_id} outside the harness: python {{this file}}

Needs only openvino and numpy. Feeds every input the IR declares, compares OpenVINO's output
with the spec's (expected.npy) under the bound the harness's verdict used (bound.npy).
Exit status: 1 when the output is outside it or OpenVINO fails to compile or infer the model,
0 when it is within it, 2 when this bundle cannot decide (no expected output)."""
import json
import os
import sys
from pathlib import Path

here = Path(__file__).resolve().parent
config = json.loads((here / "config.json").read_text())
os.environ.update(config["environment"])  # before OpenVINO loads: oneDNN reads these at start

import numpy as np
import openvino as ov


def as_tensor(array, element_type):
    """bf16 inputs are stored as float32 arrays holding bf16 values."""
    if element_type == "bf16" and array.dtype == np.float32:
        bits = (np.ascontiguousarray(array).view(np.uint32) >> 16).astype(np.uint16)
        return ov.Tensor(bits, list(array.shape), ov.Type.bf16)
    return ov.Tensor(np.ascontiguousarray(array))


def as_array(tensor):
    if tensor.element_type == ov.Type.bf16:
        return (tensor.data.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return tensor.data.copy()


harness, verdict = config["harness"], config["verdict"]
print(f"bundle of {{config['case_id']}} [{{config['target']['id']}}], written by the harness "
      f"{{harness['version']}} imported from {{harness['imported_from']}} with OpenVINO {{config['openvino_version']}}")
print(f"the harness reported: {{config['outcome']}}: {{config['message'].splitlines()[0] if config['message'] else ''}}")
core = ov.Core()
model = core.read_model(here / "model.xml", here / "model.bin")
feeds = config["feeds"]
missing = [sorted(port.get_names()) for port in model.inputs if not set(port.get_names()) & set(feeds)]
if missing:
    sys.exit(f"incomplete bundle: the IR declares inputs {{missing}} that it does not hold")
try:
    compiled = core.compile_model(model, config["target"]["device"], config["target"]["compile_properties"])
    request = compiled.create_infer_request()
    request.infer({{name: as_tensor(np.load(here / feed["file"]), feed["element_type"])
                   for name, feed in feeds.items()}})
    actual = as_array(request.get_tensor(compiled.output(0)))
except RuntimeError as error:
    print(f"OpenVINO {{ov.get_version()}}, {{config['target']['id']}}: OpenVINO failed: {{error}}")
    sys.exit(1)
if not (here / "expected.npy").exists():
    print(f"OpenVINO {{ov.get_version()}}: output shape {{list(actual.shape)}}; no expected.npy "
          "(a streamed full-size item): cannot compare here")
    sys.exit(2)
expected, bound = np.load(here / "expected.npy"), np.load(here / "bound.npy")
print(f"OpenVINO {{ov.get_version()}}, {{config['target']['id']}}: output shape {{list(actual.shape)}}, "
      f"the spec says {{list(expected.shape)}}")
if actual.shape != expected.shape:
    sys.exit(1)
error = np.abs(actual.astype(np.float64) - expected)
bad = ~(error <= bound)  # compare.compare's test: NaN counts as outside
reported = f" (the harness reported {{verdict['mismatches']}} of {{verdict['total']}})" if verdict else ""
if not error.size:
    print(f"0 of 0 elements outside the tolerance{{reported}}")
    sys.exit(0)
worst = np.unravel_index(int(np.argmax(np.where(np.isnan(error), np.inf, error))), error.shape)
print(f"{{int(bad.sum())}} of {{bad.size}} elements outside the tolerance{{reported}}; worst at "
      f"{{list(map(int, worst))}}: expected {{expected[worst]:.9g}}, got {{actual[worst]:.9g}}, allowed {{bound[worst]:.3g}}")
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


@lru_cache(maxsize=1)
def harness_info() -> dict:
    """This harness's version and where it was imported from (a ``--system-site-packages`` venv
    can import another checkout's), plus the git commit of that checkout when it is one."""
    from importlib import metadata
    package = Path(__file__).resolve().parent
    try:
        version = metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        version = None   # imported from a source tree that was never installed
    info = {"version": version, "imported_from": str(package), "git_commit": None, "git_dirty": None}
    try:
        commit = subprocess.run(["git", "-C", str(package), "rev-parse", "HEAD"], capture_output=True, text=True,
                                timeout=10)
        if commit.returncode == 0:
            status = subprocess.run(["git", "-C", str(package), "status", "--porcelain", "--untracked-files=no"],
                                    capture_output=True, text=True, timeout=10)
            info.update(git_commit=commit.stdout.strip(), git_dirty=bool(status.stdout.strip()))
    except (OSError, subprocess.SubprocessError):
        pass   # no git: version and path still say which harness wrote the bundle
    return info


def assumed_tolerance(case: Case, target: Target, inputs: Inputs, expected: Reference) -> Tolerance:
    """The bound for an item that never got a verdict (crashed, hung, rejected by OpenVINO): the
    one ``api.check`` computes, for the requested precision (what ran was never read back)."""
    magnitude_max = float(expected.magnitude.max()) if expected.magnitude.size else 0.0
    return tolerance_for(target.precision, expected.geometry.accumulation_length, inputs.data, inputs.kernel,
                         element_type=case.element_type, magnitude_max=magnitude_max,
                         scale=case.tolerance_scale, reason=case.tolerance_reason)


def write_bundle(directory: Path | str, case: Case, inputs: Inputs, expected: Reference | None, target: Target,
                 ir: RenderedIR, actual: np.ndarray | None = None, outcome: str = "failed",
                 message: str = "", *, tolerance: Tolerance | None = None,
                 feed: dict[str, np.ndarray] | None = None, verdict: dict | None = None) -> Path:
    """Write the repro bundle for ``case`` on ``target`` under ``directory``; return its path.

    ``actual`` is the device's output (None when the run crashed, hung or was rejected);
    ``expected`` is None for streamed (full-size) cases: no expected.npy/bound.npy then;
    ``tolerance`` the verdict's (None when there was no verdict: ``assumed_tolerance``,
    said so in config.json); ``feed`` every input fed at inference time by name (default:
    the IR's runtime inputs fed from ``inputs``, ``RenderedIR.feed``); ``verdict`` what the harness reported (``mismatches``, ``total``);
    ``message`` the failure text the harness reported.
    """
    bundle = Path(directory) / bundle_name(case.id, target.id)
    if bundle.exists():
        shutil.rmtree(bundle)   # left from an earlier run: no stale actual.npy or inputs
    bundle.mkdir(parents=True)
    shutil.copyfile(ir.xml_path, bundle / "model.xml")
    shutil.copyfile(ir.bin_path, bundle / "model.bin")
    feed = dict(feed) if feed is not None else ir.feed(inputs)
    types = dict(ir.input_types)   # each runtime input's element type, as rendered
    feeds = {}
    for name, array in feed.items():
        np.save(bundle / f"{name}.npy", array)
        feeds[name] = {"file": f"{name}.npy", "element_type": types[name]}
    if "kernel.npy" not in {entry["file"] for entry in feeds.values()}:
        np.save(bundle / "kernel.npy", inputs.kernel)   # a Const in the IR: for reading only
    np.asarray(feed[DATA_INPUT_NAME]).tofile(bundle / "data.bin")
    source = "the verdict's"
    if tolerance is None and expected is not None:
        tolerance, source = assumed_tolerance(case, target, inputs, expected), \
            "assumed: no verdict (the item crashed, hung or was rejected); the requested precision's bound"
    if expected is not None:
        np.save(bundle / "expected.npy", expected.output)
        np.save(bundle / "bound.npy", tolerance_bound(expected.output, expected.magnitude, tolerance))
    # else: a streamed (full-size) case; its oracle never existed whole (conformance.oracle.reference_slabs)
    if actual is not None:
        np.save(bundle / "actual.npy", actual)
    environment = kernel_environment(target)
    properties = target.config()
    (bundle / "benchmark_app.json").write_text(json.dumps({target.device: properties}, indent=2) + "\n")
    config = {
        "case_id": case.id,
        "case": json_safe({key: value for key, value in asdict(case).items() if key != "source"})
                | {"source": str(case.source)},
        "target": {"id": target.id, "device": target.device, "precision": target.precision,
                   "compile_properties": properties},
        "environment": environment,
        "openvino_version": openvino_version(),
        "harness": harness_info(),
        "ir_digest": ir.digest,
        "input_name": ir.input_name,
        "feeds": feeds,
        "tolerance": None if tolerance is None else {
            "source": source, "description": tolerance.describe(),
            "bound": "bound.npy = atol_scale * magnitude + rtol * |expected| (compare.tolerance_bound)",
            "magnitude_max": float(expected.magnitude.max()) if expected is not None and expected.magnitude.size
            else None, **json_safe(asdict(tolerance))},
        "outcome": outcome,
        "message": message,
        "verdict": verdict,
    }
    (bundle / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (bundle / "reproduce.py").write_text(_SCRIPT.format(case_id=case.id, target_id=target.id))
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
