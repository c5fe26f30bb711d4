"""Targets (``Target``: where and how a case runs) and their lists: from ``--target`` strings,
ini/pyproject, or a small YAML file.

A target string is ``DEVICE[:PRECISION][:ISA][:KEY=VALUE...]``; the fields
after the device are recognised by what they are (any order), and the virtual
devices keep their device list (``AUTO:GPU,CPU``, ``HETERO:GPU,CPU``)::

    CPU                       CPU-f32
    CPU:bf16                  CPU-bf16
    CPU:f32:avx2              CPU-f32-avx2        (ONEDNN_MAX_CPU_ISA=AVX2, in a worker process)
    AUTO:f32                  AUTO-f32
    HETERO:GPU,CPU:f16        HETERO:GPU,CPU-f16
    CPU:f32:NUM_STREAMS=1     CPU-f32-NUM_STREAMS=1

A targets YAML file (``--targets FILE``)::

    targets:
      - CPU:f32                       # a target string, or a mapping:
      - {device: CPU, precision: f32, isa: sse41}
      - device: GPU
        precision: f16
        properties: {PERFORMANCE_HINT: LATENCY}

Whether a device is present is decided when an item runs (``TargetUnavailable``
-> skipped with OpenVINO's list of devices), never here: a target list written
for a GPU machine still runs on a CPU-only one.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

PRECISIONS = ("f32", "bf16", "f16")

# ONEDNN_MAX_CPU_ISA values (oneDNN "CPU dispatcher control"), lower case; a cap
# above what the CPU has changes nothing. oneDNN silently ignores unknown values,
# so they are rejected here.
ISA_CAPS = (
    "sse41", "avx", "avx2", "avx2_vnni", "avx2_vnni_2", "avx512_core", "avx512_core_vnni",
    "avx512_core_bf16", "avx512_core_fp16", "avx10_1_512", "avx512_core_amx", "avx10_1_512_amx",
    "avx512_core_amx_fp16", "avx10_1_512_amx_fp16", "all",
)
# Virtual devices whose name carries a device list after a colon (AUTO:GPU,CPU).
META_DEVICES = ("AUTO", "HETERO", "MULTI", "BATCH")
TARGET_FIELDS = ("device", "precision", "isa", "properties")


class TargetError(ValueError):
    """A target that cannot be understood; ``field`` names the part (device, precision, isa, properties)."""

    def __init__(self, message: str, field: str | None = None):
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class Target:
    """Where and how to run: device, inference precision, extra properties, CPU ISA cap.

    ``isa`` caps oneDNN's CPU kernels (``ONEDNN_MAX_CPU_ISA``, e.g. ``avx2``);
    it is read at process start, so such a target runs in a worker process
    (``conformance.worker``) started with that environment.
    """

    device: str = "CPU"
    precision: str = "f32"
    properties: tuple[tuple[str, str], ...] = ()
    isa: str | None = None

    @property
    def id(self) -> str:
        """Readable id used in test ids and reports, e.g. ``CPU-f32``, ``CPU-f32-avx2``."""
        extra = "".join(f"-{key}={value}" for key, value in self.properties)
        cap = f"-{self.isa.lower()}" if self.isa else ""
        return f"{self.device}-{self.precision}{cap}{extra}"

    def environment(self) -> dict[str, str]:
        """Environment variables the runtime must start with for this target."""
        return {"ONEDNN_MAX_CPU_ISA": self.isa.upper()} if self.isa else {}

    def config(self) -> dict[str, str]:
        """Properties passed to ``compile_model``: precision first, then the rest."""
        return {"INFERENCE_PRECISION_HINT": self.precision, **dict(self.properties)}


def make_target(device: str, precision: str = "f32", isa: str | None = None,
                properties: dict[str, str] | None = None) -> Target:
    """A checked ``Target``: known precision, known ISA cap, ISA cap only for CPU."""
    device = str(device).strip()
    if not device:
        raise TargetError("the device is empty", "device")
    precision = str(precision).lower()
    if precision not in PRECISIONS:
        raise TargetError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}", "precision")
    if isa is not None:
        isa = str(isa).lower()
        if isa not in ISA_CAPS:
            raise TargetError(f"ISA cap {isa!r} is not one of {', '.join(ISA_CAPS)}", "isa")
        root = device.split(":")[0].split(".")[0]
        if root != "CPU" and root not in META_DEVICES:
            raise TargetError(f"an ISA cap ({isa}) applies to the CPU plugin (CPU, AUTO, HETERO...), "
                              f"not {device}", "isa")
    pairs = tuple(sorted((str(key), str(value)) for key, value in (properties or {}).items()))
    if any(key == "INFERENCE_PRECISION_HINT" for key, _ in pairs):
        raise TargetError("give the inference precision as the precision field, not as a property",
                          "properties")
    return Target(device, precision, pairs, isa)


def parse_target(text: str) -> Target:
    """``DEVICE[:PRECISION][:ISA][:KEY=VALUE...]`` -> ``Target`` (see the module docstring)."""
    parts = [part.strip() for part in str(text).strip().split(":")]
    device = parts.pop(0)
    if device in META_DEVICES and parts and not _is_setting(parts[0]):
        device = f"{device}:{parts.pop(0)}"   # AUTO:GPU,CPU / HETERO:GPU,CPU keep their device list
    precision, isa, properties = "f32", None, {}
    for part in parts:
        if "=" in part:
            key, value = part.split("=", 1)
            properties[key.strip()] = value.strip()
        elif part.lower() in PRECISIONS:
            precision = part.lower()
        elif part.lower() in ISA_CAPS:
            isa = part.lower()
        else:
            raise TargetError(f"target {text!r}: {part!r} is not a precision ({', '.join(PRECISIONS)}), "
                              f"an ISA cap ({', '.join(ISA_CAPS)}) or KEY=VALUE")
    try:
        return make_target(device, precision, isa, properties)
    except TargetError as error:
        raise TargetError(f"target {text!r}: {error}", error.field) from None


def _is_setting(part: str) -> bool:
    return "=" in part or part.lower() in PRECISIONS or part.lower() in ISA_CAPS


def load_targets(path: Path | str) -> list[Target]:
    """Targets listed in a YAML file; problems raise ``CaseError`` naming file, line and field."""
    from .case import CaseError, parse_yaml   # the YAML stage: not imported to parse --target strings
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise CaseError(path, None, None, f"cannot read the targets file: {error.strerror}") from None
    document = parse_yaml(text, path)
    if not isinstance(document, dict) or "targets" not in document:
        raise CaseError(path, 1, None, "expected a mapping with a 'targets:' list")
    unknown = [key for key in document if key != "targets"]
    if unknown:
        raise CaseError(path, document.key_lines[unknown[0]], unknown[0], "unknown field (allowed: targets)")
    entries = document["targets"]
    if not isinstance(entries, list) or not entries:
        raise CaseError(path, document.key_lines["targets"], "targets", "expected a non-empty list")
    targets = []
    for index, entry in enumerate(entries):
        line = _line_of(entries, index, document.key_lines["targets"])
        try:
            if isinstance(entry, str):
                targets.append(parse_target(entry))
                continue
            if not isinstance(entry, dict):
                raise CaseError(path, line, "targets", "each target is a string like CPU:f32 or a mapping")
            for key in entry:
                if key not in TARGET_FIELDS:
                    raise CaseError(path, entry.key_lines[key], key,
                                    f"unknown field (allowed: {', '.join(TARGET_FIELDS)})")
            if "device" not in entry:
                raise CaseError(path, entry.line, "device", "required")
            properties = entry.get("properties") or {}
            if not isinstance(properties, dict):
                raise CaseError(path, entry.key_lines["properties"], "properties", "expected a mapping")
            targets.append(make_target(entry["device"], entry.get("precision", "f32"), entry.get("isa"),
                                       properties))
        except TargetError as error:
            at = entry.key_lines.get(error.field, entry.line) if isinstance(entry, dict) else line
            raise CaseError(path, at, error.field or "targets", str(error)) from None
    return unique(targets)


def _line_of(entries: list, index: int, fallback: int) -> int:
    entry = entries[index]
    return getattr(entry, "line", None) or fallback + 1 + index


def unique(targets: list[Target]) -> list[Target]:
    """``targets`` without repeats (same id), first occurrence kept."""
    seen: dict[str, Target] = {}
    for target in targets:
        seen.setdefault(target.id, target)
    return list(seen.values())
