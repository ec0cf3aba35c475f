"""What a bench run covers: shapes (N rows × V classes), dtypes and devices, parsed from the command line."""

from __future__ import annotations

import re
from dataclasses import dataclass

DEFAULT_SHAPES = "4096x32000,4096x128256,8192x32000,8192x128256"
DEFAULT_DTYPES = ("float32", "bfloat16")
BENCH_DTYPES = ("float32", "bfloat16", "float16")
ITEMSIZE = {"float32": 4, "bfloat16": 2, "float16": 2}
LABEL_ITEMSIZE = 8  # int64 class indices
_SHAPE = re.compile(r"^\s*(\d+)\s*[x×X*]\s*(\d+)\s*$")


@dataclass(frozen=True, order=True)
class Shape:
    rows: int  # N: tokens in the batch
    classes: int  # V: the vocabulary

    @property
    def text(self) -> str:
        return f"{self.rows}x{self.classes}"

    @property
    def elements(self) -> int:
        return self.rows * self.classes


def parse_shapes(text: str) -> list[Shape]:
    """"4096x32000,8192×128256" -> shapes; ValueError naming the first bad one."""
    shapes = []
    for part in text.split(","):
        match = _SHAPE.match(part)
        if not match or min(int(match.group(1)), int(match.group(2))) < 1:
            raise ValueError(f"a shape is N×V with positive whole numbers (e.g. 4096x32000), got {part.strip()!r}")
        shapes.append(Shape(int(match.group(1)), int(match.group(2))))
    return list(dict.fromkeys(shapes))


def parse_dtypes(text: str) -> list[str]:
    dtypes = [d.strip() for d in text.split(",") if d.strip()]
    bad = [d for d in dtypes if d not in BENCH_DTYPES]
    if bad or not dtypes:
        raise ValueError(f"unknown bench dtype {bad[0] if bad else text!r}; known: {', '.join(BENCH_DTYPES)}")
    return list(dict.fromkeys(dtypes))


def select_devices(requested: str, available: dict[str, str]) -> tuple[list[str], list[str]]:
    """(devices to run, reasons for those skipped) for --device cpu|cuda|all given a target's available devices.

    "all" runs cpu and cuda where a GPU is visible, skipping nothing it could not have run; "cuda" without a GPU is
    a skip with the reason, not an error."""
    wanted = ["cpu", "cuda"] if requested == "all" else [requested]
    run = [device for device in wanted if device in available]
    skipped = [f"{device}: no such device visible to the framework" for device in wanted
               if device not in available and requested != "all"]
    return run, skipped


def dtype_order(dtypes: list[str]) -> list[str]:
    """Smallest itemsize first, so memory an allocator keeps from one measurement is no larger than the next's."""
    return sorted(dtypes, key=lambda d: (ITEMSIZE[d], d))
