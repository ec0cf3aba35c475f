"""The cells whose outcome depends on the device: every cell measured on the CPU and on CUDA (same API, backend,
case, dtype, mode and framework release) that came out differently, with both outcomes and the cause of each."""

from __future__ import annotations

from collections import defaultdict

from xentcompat.report.findings import api_label
from xentcompat.report.tables import Table
from xentcompat.results.record import Record

INTRO = ("Cells measured on both the CPU and a CUDA GPU that gave different outcomes (loss / gradient), with the "
         "finding behind each: a CPU kernel's float16 sum or summation order, a GPU kernel's float32 accumulation, "
         "a label check that is a device-side assert on the GPU. Other releases of a framework on the two devices "
         "are compared only where a cell ran on both.")


def device_pairs(records: list[Record]) -> list[tuple[Record, Record]]:
    """(CPU record, CUDA record) of every cell measured on both devices, with the same framework release where one
    is shared, else the CUDA machine's release against the CPU's."""
    by_cell: dict[tuple, dict[str, list[Record]]] = defaultdict(lambda: defaultdict(list))
    for record in records:
        key = (record.framework, record.backend, record.api, record.case, record.dtype, record.mode)
        by_cell[key][record.device].append(record)
    pairs = []
    for key in sorted(by_cell, key=lambda k: tuple(map(str, k))):
        cpus, gpus = by_cell[key].get("cpu", []), by_cell[key].get("cuda", [])
        if cpus and gpus:
            pairs.append((cpus[0], gpus[0]))
    return pairs


def differs(pair: tuple[Record, Record]) -> bool:
    cpu, gpu = pair
    return cpu.observed != gpu.observed


def varies_by_device_table(records: list[Record]) -> Table | None:
    """The cells whose outcome on CUDA is not their outcome on the CPU, one row per API, mode and pair of outcomes
    (its cases and dtypes listed); None when none differs."""
    groups: dict[tuple, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for cpu, gpu in device_pairs(records):
        if differs((cpu, gpu)):
            cases, dtypes = groups[(api_label(cpu, with_place=False), cpu.mode, _measured(cpu), _measured(gpu))]
            cases.append(cpu.case)
            dtypes.append(cpu.dtype)
    rows = tuple((api, ", ".join(dict.fromkeys(cases)), ", ".join(dict.fromkeys(dtypes)), mode, on_cpu, on_gpu)
                 for (api, mode, on_cpu, on_gpu), (cases, dtypes) in sorted(groups.items()))
    if not rows:
        return None
    return Table(("api", "cases", "dtypes", "mode", "CPU", "CUDA"), rows)


def _measured(record: Record) -> str:
    outcome = " / ".join(record.observed)
    finding = f" ({record.finding})" if record.finding else ""
    return f"{outcome}{finding}, {record.framework} {record.framework_version}"
