"""Peak memory and time of fused linear cross-entropy against the materialised logits, forward + backward, on CPU.

    flock /tmp/xentcompat-bigmem.lock python benchmarks/linear_memory.py [--rows 4096] [--depth 1024]
        [--vocab 128256] [--dtypes float32 bfloat16] [--variants chunked reference materialised] [--threads 2]

Variants (h: N × D, W: V × D, y: N labels; the default mean):
* chunked: `torch.nn.functional.linear_cross_entropy(h, W, y, options=torch.nn.LinearCrossEntropyOptions())`, the
  chunked custom op, which never holds the N × V logits;
* reference: `linear_cross_entropy(h, W, y)` (options=None: `linear` then `cross_entropy`);
* materialised: `torch.nn.functional.cross_entropy(h @ W.T, y)`.

Each measurement runs in a fresh process: h, W and y are made (requires_grad on h and W), then the peak resident
memory is reset (/proc/self/clear_refs) and one forward + backward runs; the peak it adds is VmHWM less VmRSS before
it (the gradients h.grad and W.grad, which it creates, included). The time is that one step's wall time, after one
smaller warm-up step of the same variant (so it counts no one-time initialisation), not a median: a benchmark, not a
test. A measurement whose process dies (out of memory) is retried with half the rows, and the table says so.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

MiB = 2**20
VARIANTS = ("chunked", "reference", "materialised")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--depth", type=int, default=1024)
    parser.add_argument("--vocab", type=int, default=128256)
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    parser.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--min-rows", type=int, default=256, help="the fewest rows a retry goes down to")
    parser.add_argument("--child", nargs=5, metavar=("VARIANT", "DTYPE", "N", "D", "V"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        variant, dtype, *sizes = args.child
        print(json.dumps(measure(variant, dtype, *map(int, sizes), args.threads)))
        return 0
    rows = [measured(variant, dtype, args) for dtype in args.dtypes for variant in args.variants]
    print(table(rows, args))
    return 0


def measured(variant: str, dtype: str, args) -> dict:
    """The measurement at --rows, or at the most rows (halving) whose process survives."""
    rows = args.rows
    while True:
        command = [sys.executable, str(Path(__file__).resolve()), "--threads", str(args.threads), "--child", variant,
                   dtype, str(rows), str(args.depth), str(args.vocab)]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode == 0:
            return {**json.loads(done.stdout.strip().splitlines()[-1]), "asked_rows": args.rows}
        if rows // 2 < args.min_rows:
            return {"variant": variant, "dtype": dtype, "rows": rows, "asked_rows": args.rows,
                    "failed": (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]}
        rows //= 2


def measure(variant: str, dtype: str, rows: int, depth: int, vocab: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    step(variant, *inputs(dtype, 8, depth, 1024))  # warm-up: kernels and allocator, outside the measurement
    h, w, y = inputs(dtype, rows, depth, vocab)
    before = status_kib("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")
    start = time.perf_counter()
    loss = step(variant, h, w, y)
    seconds = time.perf_counter() - start
    peak = status_kib("VmHWM")
    return {"variant": variant, "dtype": dtype, "rows": rows, "depth": depth, "vocab": vocab,
            "inputs_mib": before / 1024, "peak_mib": (peak - before) / 1024, "seconds": seconds,
            "loss": float(loss), "threads": threads}


def inputs(dtype: str, rows: int, depth: int, vocab: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    kind = getattr(torch, dtype)
    h = torch.randn(rows, depth, generator=generator).to(kind).requires_grad_()
    w = (torch.randn(vocab, depth, generator=generator) / depth**0.5).to(kind).requires_grad_()
    y = torch.randint(0, vocab, (rows,), generator=generator)
    return h, w, y


def step(variant: str, h, w, y):
    """One forward + backward of `variant`; the loss (detached)."""
    import torch
    import torch.nn.functional as F

    if variant == "chunked":
        loss = F.linear_cross_entropy(h, w, y, options=torch.nn.LinearCrossEntropyOptions())
    elif variant == "reference":
        loss = F.linear_cross_entropy(h, w, y)
    else:
        loss = F.cross_entropy(h @ w.T, y)
    loss.backward()
    return loss.detach()


def status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/self/status")


def table(rows: list[dict], args) -> str:
    """Markdown: per dtype and variant, rows measured, peak added, its ratio to the materialised one, and time."""
    lines = [f"N x D x V = {args.rows} x {args.depth} x {args.vocab} on CPU, {args.threads} threads, "
             "forward + backward (the mean), one process per measurement", "",
             "| dtype | variant | N | inputs MiB | peak added MiB | peak / materialised | wall s |", "|---|---|---|---|---|---|---|"]
    for row in rows:
        if "failed" in row:
            lines.append(f"| {row['dtype']} | {row['variant']} | {row['rows']} | | failed: {row['failed']} | | |")
            continue
        base = next((other for other in rows if other["dtype"] == row["dtype"] and other["variant"] == "materialised"
                     and other.get("rows") == row["rows"] and "failed" not in other), None)
        ratio = f"{row['peak_mib'] / base['peak_mib']:.3f}" if base else "n/a"
        note = "" if row["rows"] == row["asked_rows"] else f" (of {row['asked_rows']} asked: the largest that ran)"
        lines.append(f"| {row['dtype']} | {row['variant']} | {row['rows']}{note} | {row['inputs_mib']:.0f} | "
                     f"{row['peak_mib']:.0f} | {ratio} | {row['seconds']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
