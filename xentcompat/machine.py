"""The machine a shard ran on: the CPU, the instruction sets that change which kernels a framework picks, and the
kernel switches in force.

Frameworks choose CPU kernels at run time: oneDNN (TensorFlow) takes an fp16 path on CPUs with `avx512_fp16`, ATen
(PyTorch) dispatches by `ATEN_CPU_CAPABILITY`, XLA compiles for the host's ISA. So one cell can give different
outcomes on two machines. A shard names its machine (`machine_id`), records carry it, merge keeps the records of
different machines apart, and an expectation can say which outcome each kernel path gives (`Condition`).
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import re
import subprocess
from dataclasses import dataclass
from functools import cache

# Instruction sets that select a different kernel in oneDNN, ATen or XLA (x86 and Arm names as the kernel lists them).
KERNEL_FLAGS = ("avx2", "avx512f", "avx512bw", "avx512_vnni", "avx512_bf16", "avx512_fp16", "avx_ne_convert",
                "asimd", "asimdhp", "fphp", "bf16", "i8mm", "sve", "sve2")
KERNEL_FLAG_PREFIXES = ("amx",)
# Environment variables that switch kernels; XLA_FLAGS counts only for its ISA flags.
SWITCHES = ("TF_ENABLE_ONEDNN_OPTS", "ONEDNN_MAX_CPU_ISA", "DNNL_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY", "XLA_FLAGS")
_XLA_ISA = re.compile(r"--xla_cpu_max_isa=\S+")


@cache
def cpu() -> dict:
    """{"model", "arch", "flags"}: the CPU's name and the kernel-selecting instruction sets it has."""
    model, flags = _cpuinfo()
    present = sorted(flag for flag in flags if flag in KERNEL_FLAGS or flag.startswith(KERNEL_FLAG_PREFIXES))
    return {"model": model or platform.processor() or "unknown", "arch": platform.machine(), "flags": present}


def kernel_switches(environ=None) -> dict[str, str]:
    """The kernel switches set in `environ` (default: this process); XLA_FLAGS reduced to its ISA flags."""
    environ = os.environ if environ is None else environ
    found = {name: environ[name] for name in SWITCHES if name in environ}
    if "XLA_FLAGS" in found:
        isa = " ".join(_XLA_ISA.findall(found["XLA_FLAGS"]))
        found = {k: v for k, v in found.items() if k != "XLA_FLAGS"} | ({"XLA_FLAGS": isa} if isa else {})
    return found


def description(switches: dict[str, str] | None = None) -> dict:
    """The machine as results.json records it: the CPU, the switches and the id of both."""
    switches = kernel_switches() if switches is None else switches
    described = {"cpu": cpu(), "kernel_switches": switches}
    return {"machine": machine_id(described), **described}


@cache
def current() -> dict:
    """This process's machine (its kernel switches as they were at the first call)."""
    return description()


def machine_id(described: dict) -> str:
    """A short id of a CPU (model and kernel flags) with its kernel switches: records of one id are one kernel path."""
    text = json.dumps({"cpu": described["cpu"], "kernel_switches": described["kernel_switches"]}, sort_keys=True)
    return "M-" + hashlib.sha256(text.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class Condition:
    """Which machines take a kernel path: every flag in `cpu_flags` present, each switch in `switches` at one of its
    values and each in `switches_not` at none of them ("" stands for unset; values compare case-insensitively)."""

    cpu_flags: tuple[str, ...] = ()
    switches: tuple[tuple[str, tuple[str, ...]], ...] = ()
    switches_not: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def holds(self, machine: dict) -> bool:
        flags = set(machine["cpu"]["flags"])
        value = {name: machine["kernel_switches"].get(name, "").lower() for name in SWITCHES}
        return (all(flag in flags for flag in self.cpu_flags)
                and all(value[name] in values for name, values in self.switches)
                and not any(value[name] in values for name, values in self.switches_not))

    def text(self) -> str:
        """The condition in words, e.g. "CPU with avx512bw and avx512_fp16, TF_ENABLE_ONEDNN_OPTS not 0"."""
        parts = [f"CPU with {' and '.join(self.cpu_flags)}"] if self.cpu_flags else []
        parts += [f"{name} {_values_text(values)}" for name, values in self.switches]
        parts += [f"{name} not {_values_text(values)}" for name, values in self.switches_not]
        return ", ".join(parts) or "any machine"


def _values_text(values: tuple[str, ...]) -> str:
    return " or ".join("unset" if value == "" else value for value in values)


def condition(entry, where: str) -> Condition:
    """A Condition from an expectation file's table; ValueError naming `where` and the field if malformed."""
    if not isinstance(entry, dict):
        raise ValueError(f"{where}: a condition is a table of cpu_flags, switches and switches_not")
    unknown = set(entry) - {"cpu_flags", "switches", "switches_not"}
    if unknown:
        raise ValueError(f"{where}: unknown condition field {sorted(unknown)[0]!r}")
    flags = entry.get("cpu_flags", [])
    if not isinstance(flags, list) or not all(isinstance(flag, str) for flag in flags):
        raise ValueError(f"{where}: field 'cpu_flags' must be a list of CPU flag names")
    strange = [flag for flag in flags if flag not in KERNEL_FLAGS and not flag.startswith(KERNEL_FLAG_PREFIXES)]
    if strange:
        raise ValueError(f"{where}: field 'cpu_flags': {strange[0]!r} is not a kernel-selecting CPU flag "
                         f"({', '.join(KERNEL_FLAGS)}, amx_*)")
    return Condition(tuple(flags), _switches(entry, "switches", where), _switches(entry, "switches_not", where))


def _switches(entry: dict, name: str, where: str) -> tuple[tuple[str, tuple[str, ...]], ...]:
    table = entry.get(name, {})
    if not isinstance(table, dict) or any(switch not in SWITCHES for switch in table):
        raise ValueError(f"{where}: field {name!r} must map kernel switches ({', '.join(SWITCHES)}) to values")
    pairs = []
    for switch, values in sorted(table.items()):
        values = values if isinstance(values, list) else [values]
        if not all(isinstance(value, str) for value in values):
            raise ValueError(f"{where}: field {name!r}: the values of {switch} must be strings")
        pairs.append((switch, tuple(value.lower() for value in values)))
    return tuple(pairs)


def _cpuinfo() -> tuple[str, set[str]]:
    """(model name, every flag) from /proc/cpuinfo, or from sysctl on macOS; ("", set()) where neither answers."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as stream:
            text = stream.read()
    except OSError:
        return _sysctl()
    model = _field(text, ("model name", "Hardware", "cpu model", "CPU part"))
    flags = set(_field(text, ("flags", "Features")).split())
    return model, flags


def _field(text: str, names: tuple[str, ...]) -> str:
    for name in names:
        match = re.search(rf"^{re.escape(name)}\s*:\s*(.*)$", text, re.MULTILINE)
        if match:
            return match.group(1).strip()
    return ""


def _sysctl() -> tuple[str, set[str]]:
    try:
        model = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "", set()
    return model, set()
