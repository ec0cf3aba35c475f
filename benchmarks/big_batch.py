"""Write a big user batch as an uncompressed .npz (memory-mapped when xentcompat reads it).

    python benchmarks/big_batch.py big.npz --rows 4096 --classes 131072

Normal logits of scale 3, a few rows with a confident gap (the label 30 above the rest), one -inf logit away from
its row's label, labels in range. Written row chunk by row chunk: the script holds one chunk, not the batch.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

import numpy as np

CHUNK_ROWS = 256


def write_big_batch(path: Path, rows: int, classes: int, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, rows)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        with archive.open("logits.npy", "w", force_zip64=True) as stream:
            np.lib.format.write_array_header_1_0(stream, {"descr": "<f4", "fortran_order": False,
                                                          "shape": (rows, classes)})
            for start in range(0, rows, CHUNK_ROWS):
                stream.write(_rows(rng, labels, start, min(rows, start + CHUNK_ROWS), classes).tobytes())
        with archive.open("labels.npy", "w") as stream:
            np.lib.format.write_array(stream, labels)


def _rows(rng, labels, start: int, stop: int, classes: int) -> np.ndarray:
    block = (3 * rng.standard_normal((stop - start, classes))).astype(np.float32)
    for row in range(start, min(stop, 4)):  # confident rows: the label 30 above every other logit
        block[row - start, labels[row]] = block[row - start].max() + 30
    if start == 0:
        block[0, (labels[0] + 1) % classes] = -np.inf
    return block


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--rows", type=int, default=4096)
    parser.add_argument("--classes", type=int, default=131072)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write_big_batch(args.out, args.rows, args.classes, args.seed)


if __name__ == "__main__":
    main()
