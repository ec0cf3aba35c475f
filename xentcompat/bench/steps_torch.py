"""PyTorch's timing path: the adapter's loss function (eager, or its `torch.compile` callable under the adapter's
dynamo config), `loss.backward()`, then the device waited for. Inputs are made on the device in the dtype."""

from __future__ import annotations

import contextlib
import statistics
import time

import torch

from xentcompat.bench import inputs as bench_inputs
from xentcompat.bench.steps import PROBE_SHAPE, Captured, NoTimingPath

TORCH_DTYPES = {"float16": torch.float16, "bfloat16": torch.bfloat16, "float32": torch.float32}


def check(captured: Captured) -> None:
    x = captured.arguments.get("x")
    if not isinstance(x, torch.Tensor) or tuple(x.shape) != PROBE_SHAPE:
        raise NoTimingPath("its adapter's helper is not handed the logits (N, C): it does not take logits")


def inputs(rows: int, classes: int, dtype: str, device: str, targets: str) -> tuple:
    """The bench's logits (needing a gradient) and labels or probabilities, in the dtype on `device`."""
    x = torch.from_numpy(bench_inputs.logits(rows, classes)).to(device=device, dtype=TORCH_DTYPES[dtype])
    t = torch.from_numpy(bench_inputs.targets(rows, classes, targets)).to(device)
    return x.requires_grad_(), (t if targets == "labels" else t.to(x.dtype))


def prepare(captured: Captured, rows: int, classes: int, dtype: str, device: str, mode: str):
    """The step: forward in the mode (reduction mean, the default), backward, the device waited for."""
    module, loss_fn = captured.api.adapter, captured.arguments["loss_fn"]
    x, t = inputs(rows, classes, dtype, device, captured.api.targets)
    compiled = mode == "compiled"
    call = module._compiled(loss_fn) if compiled else loss_fn
    config = (lambda: torch._dynamo.config.patch(module.COMPILE_CONFIG)) if compiled else contextlib.nullcontext

    def step():
        x.grad = None  # a fresh gradient each call, not an accumulation
        with config():
            loss = call(x, t, reduction="mean")
        loss.backward()
        sync(device)

    return step


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def reset_device_peak(device: str) -> None:
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()


def device_peak_bytes(device: str) -> int | None:
    """The peak CUDA allocation since the reset (torch.cuda.max_memory_allocated); None on the CPU."""
    return torch.cuda.max_memory_allocated() if device == "cuda" else None


def release(device: str) -> None:
    """A measurement begins: the graphs compiled for earlier ones are dropped (each served one shape and dtype) and
    on CUDA the allocator's cache is emptied."""
    torch._dynamo.reset()
    if device == "cuda":
        torch.cuda.empty_cache()


def device_bandwidth(device: str, repeats: int) -> dict | None:
    """A CUDA device's copy bandwidth (a 1 GiB tensor cloned: read + write bytes / median time); None on the CPU."""
    if device != "cuda":
        return None
    source = torch.empty(1 << 28, dtype=torch.float32, device="cuda")
    seconds = []
    for attempt in range(repeats + 1):
        torch.cuda.synchronize()
        start = time.perf_counter()
        source.clone()
        torch.cuda.synchronize()
        if attempt:
            seconds.append(time.perf_counter() - start)
    moved = 2 * source.numel() * source.element_size()
    return {"bytes_per_second": moved / statistics.median(seconds), "seconds": seconds, "bytes_moved": moved,
            "method": "torch clone of a 1 GiB CUDA tensor, read + write bytes / median time"}
