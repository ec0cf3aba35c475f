"""Find the cells whose verdict depends on the CPU kernels: run the matrix under each kernel switch a framework offers
on this machine and list every cell whose outcome changes against the run with no switch set.

    python tools/kernel_sweep.py --out sweep [--targets torch tensorflow ...]

Writes `sweep.md` (the table) and each run's results under `--out` (a run already there is reused, so a sweep
resumes); `tox -e kernel-sweep` runs it. The switches are those of `xentcompat.machine.SWITCHES`; values this CPU
cannot take are left out (a cap above the CPU is no change).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from xentcompat import machine
from xentcompat.results.documents import read_results


@dataclass(frozen=True)
class Variant:
    target: str
    switch: str
    value: str
    mode: str = "eager"
    needs: tuple[str, ...] = ()  # CPU flags the value needs

    @property
    def label(self) -> str:
        return f"{self.target}-{self.mode}-{self.switch}={self.value}".replace("--", "").replace("=", "_")


def _variants() -> tuple[Variant, ...]:
    """Each switch value this project's frameworks read, on the targets whose kernels it changes."""
    aten = [("default", ()), ("avx2", ("avx2",)), ("avx512", ("avx512f", "avx512bw"))]
    onednn_isa = [("AVX2", ("avx2",)), ("AVX512_CORE", ("avx512f",))]
    xla_isa = [("SSE4_2", ()), ("AVX2", ("avx2",))]
    found = [Variant("torch", "ATEN_CPU_CAPABILITY", v, needs=n) for v, n in aten]
    found += [Variant("keras-torch", "ATEN_CPU_CAPABILITY", "default")]
    found += [Variant("tensorflow", "TF_ENABLE_ONEDNN_OPTS", v) for v in ("0", "1")]
    found += [Variant("tensorflow", "ONEDNN_MAX_CPU_ISA", v, needs=n) for v, n in onednn_isa]
    found += [Variant("jax", "XLA_FLAGS", f"--xla_cpu_max_isa={v}", "compiled", n) for v, n in xla_isa]
    found += [Variant("jax", "XLA_FLAGS", "--xla_cpu_max_isa=SSE4_2", "eager")]
    found += [Variant("tensorflow", "XLA_FLAGS", "--xla_cpu_max_isa=AVX2", "compiled", ("avx2",))]
    return tuple(found)


VARIANTS = _variants()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--targets", nargs="+", default=sorted({v.target for v in VARIANTS}))
    args = parser.parse_args(argv)
    flags = set(machine.cpu()["flags"])
    variants = [v for v in VARIANTS if v.target in args.targets and set(v.needs) <= flags]
    rows = []
    for target, mode in sorted({(v.target, v.mode) for v in variants}):
        baseline = _run(args.out / f"{target}-{mode}-baseline", target, mode, {})
        for variant in (v for v in variants if (v.target, v.mode) == (target, mode)):
            changed = _run(args.out / variant.label, target, mode, {variant.switch: variant.value})
            rows += [(variant, *change) for change in _changes(baseline, changed)]
            print(f"kernel-sweep: {variant.label}: {sum(1 for row in rows if row[0] == variant)} cells change",
                  file=sys.stderr)
    table = _table(rows, variants)
    (args.out / "sweep.md").write_text(table)
    print(table)
    return 0


def _run(out: Path, target: str, mode: str, switches: dict[str, str]) -> dict:
    """The records of one run (an earlier complete run in `out` is reused: a sweep can be resumed)."""
    if (out / "results.json").exists():
        return {_key(record): record for record in read_results(out / "results.json")["records"]}
    environment = {name: value for name, value in os.environ.items() if name not in machine.SWITCHES}
    command = [sys.executable, "-m", "xentcompat.cli", "run", "--targets", target, "--mode", mode,
               "--out", str(out)]
    done = subprocess.run(command, env={**environment, **switches}, capture_output=True, text=True)
    if done.returncode not in (0, 1):
        raise SystemExit(f"kernel-sweep: {target} {mode} {switches} failed: {done.stderr.strip()[-500:]}")
    return {_key(record): record for record in read_results(out / "results.json")["records"]}


def _key(record: dict) -> tuple:
    return record["api"], record.get("backend") or "", record["case"], record["dtype"], record["mode"]


def _changes(baseline: dict, changed: dict) -> list[tuple]:
    found = []
    for key in sorted(baseline.keys() | changed.keys()):
        before, after = _outcome(baseline.get(key)), _outcome(changed.get(key))
        if before != after:
            found.append((key, before, after))
    return found


def _outcome(record: dict | None) -> str:
    return "not run" if record is None else f"{record['loss']['outcome']} / {record['grad']['outcome']}"


def _table(rows: list[tuple], variants: list[Variant]) -> str:
    """The changes grouped by switch, outcome change and dtype: a count and the cells (a few, then how many more)."""
    cpu = machine.cpu()
    lines = [f"# Kernel-switch sweep on {cpu['model']} ({', '.join(cpu['flags'])})", "",
             "Every cell whose loss / gradient outcome changes under one switch, against the run with none set.", "",
             "Switches run: " + "; ".join(f"{v.target} {v.mode} {v.switch}={v.value}" for v in variants) + ".", ""]
    if not rows:
        return "\n".join(lines + ["No cell changes verdict under any switch.", ""])
    groups: dict[tuple, list[str]] = {}
    for variant, (api, backend, case, dtype, _), before, after in rows:
        key = (variant.target, variant.mode, f"{variant.switch}={variant.value}", dtype, before, after)
        groups.setdefault(key, []).append(f"`{api}{f' [{backend}]' if backend else ''}` {case}")
    lines += ["| target | mode | switch | dtype | no switch | with switch | cells | which |", "|---" * 8 + "|"]
    for (target, mode, switch, dtype, before, after), cells in sorted(groups.items()):
        shown = "; ".join(cells[:3]) + (f"; and {len(cells) - 3} more" if len(cells) > 3 else "")
        lines.append(f"| {target} | {mode} | {switch} | {dtype} | {before} | {after} | {len(cells)} | {shown} |")
    return "\n".join(lines + [""])


if __name__ == "__main__":
    sys.exit(main())
