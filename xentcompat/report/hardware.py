"""The machines a run measured on, and the cells whose outcome varies by CPU.

A cell varies by CPU when its expectation names kernel paths (outcomes that depend on the CPU's instruction sets or
on kernel switches), or when two machines of a merged run measured it differently. Each such cell is one row: what
each machine measured, then what every kernel path gives, marked measured where a record of this run took it.
"""

from __future__ import annotations

from collections import defaultdict

from xentcompat.report.findings import api_label
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

INTRO = ("Frameworks pick CPU kernels by instruction set and by kernel switches, so these cells give different "
         "outcomes on different machines. `measured` is this run; the kernel paths come from the expectations, "
         "marked `measured` where a machine of this run took that path.")


def machine_text(env: dict) -> str:
    """The machine in words: the CPU, its kernel-selecting instruction sets, the kernel switches in force."""
    cpu = env.get("cpu") or {}
    flags = ", ".join(cpu.get("flags") or []) or "none of those that select kernels"
    switches = ", ".join(f"{name}={value}" for name, value in (env.get("kernel_switches") or {}).items())
    return (f"machine {env.get('machine')}: {cpu.get('model', 'unknown CPU')} ({cpu.get('arch', '?')}; "
            f"{flags}); kernel switches: {switches or 'none set'}")


def machines(environments: list[Record]) -> list[str]:
    """Each distinct machine of the run once, in words, with the targets that ran on it."""
    targets: dict[str, list[str]] = {}
    described: dict[str, str] = {}
    for env in environments:
        key = str(env.get("machine"))
        targets.setdefault(key, []).append(str(env.get("target")))
        described[key] = machine_text(env)
    return [f"{described[key]} (targets: {', '.join(sorted(set(names)))})" for key, names in sorted(targets.items())]


def varies_by_cpu_table(records: list[Record]) -> Table | None:
    """api × case × dtype × mode rows of the cells that vary by CPU; None when no cell does."""
    groups: dict[tuple, list[Record]] = defaultdict(list)
    for record in (r for r in records if r.device == "cpu"):  # CPU against GPU: `devices.varies_by_device_table`
        key = (api_label(record), record.case, record.dtype, record.mode, record.framework_version)
        groups[key].append(record)
    rows = tuple((*key[:4], _measured(group), _paths(group)) for key, group in sorted(groups.items())
                 if _varies(group))
    if not rows:
        return None
    return Table(("api", "case", "dtype", "mode", "measured", "by kernel path"), rows)


def _varies(group: list[Record]) -> bool:
    declared = any(record.expected.varies for record in group)
    return declared or len({_outcome(record) for record in group}) > 1


def _outcome(record: Record) -> str:
    return f"{record.loss.outcome} / {record.grad.outcome}"


def _measured(group: list[Record]) -> str:
    return "; ".join(f"{_outcome(record)} on {record.machine}"
                     for record in sorted(group, key=lambda r: str(r.machine)))


def _paths(group: list[Record]) -> str:
    declared = next((record.expected.varies for record in group if record.expected.varies), None)
    if not declared:
        return "no kernel path declared: the expectations do not explain the difference"
    taken = {record.expected.kernel_path for record in group}
    return "; ".join(f"{path['loss']} / {path['grad']} with {path['when']}"
                     + (" (measured)" if path["path"] in taken else "") for path in declared)
