"""The arrays of an .npz file, memory-mapped where the archive stores them uncompressed (`np.savez`).

A mapped array costs no process memory of its own: its pages are the file's, in the page cache, shared by every
process that maps the file (the command line, the shard's controller, each pytest-xdist worker) and dropped by the
kernel under pressure. A compressed member (`np.savez_compressed`) cannot be mapped and is read into memory.
"""

from __future__ import annotations

import struct
import zipfile
from pathlib import Path

import numpy as np

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # the zip local file header before the name and the extra field
_LOCAL_SIGNATURE = b"PK\003\004"


def npz_arrays(path: Path) -> dict[str, np.ndarray]:
    """name (without `.npy`) -> array: read-only maps of the stored members, loaded copies of the compressed ones.

    ValueError / OSError / zipfile.BadZipFile for a file that is not a readable archive of .npy members (a pickled
    object array included)."""
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.infolist():
            name = member.filename.removesuffix(".npy")
            mapped = _mapped(path, archive, member) if member.compress_type == zipfile.ZIP_STORED else None
            arrays[name] = mapped if mapped is not None else _loaded(archive, member)
    return arrays


def _mapped(path: Path, archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> np.ndarray | None:
    """The member as a read-only memmap, or None where its .npy header cannot be mapped (an object array)."""
    with path.open("rb") as raw:
        raw.seek(member.header_offset)
        fields = _LOCAL_HEADER.unpack(raw.read(_LOCAL_HEADER.size))
        if fields[0] != _LOCAL_SIGNATURE:
            raise ValueError(f"{member.filename}: bad zip local header")
        name_length, extra_length = fields[-2], fields[-1]
        start = member.header_offset + _LOCAL_HEADER.size + name_length + extra_length
        raw.seek(start)
        version = np.lib.format.read_magic(raw)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, fortran, dtype = read_header(raw)
        offset = raw.tell()
    if dtype.hasobject:
        raise ValueError(f"{member.filename}: an object array (pickled data is not read)")
    if int(np.prod(shape)) == 0:
        return np.zeros(shape, dtype)
    mapped = np.memmap(path, dtype=dtype, mode="r", offset=offset, shape=shape, order="F" if fortran else "C")
    return np.asarray(mapped)  # a plain ndarray view (slices of a memmap would stay memmaps)


def _loaded(archive: zipfile.ZipFile, member: zipfile.ZipInfo) -> np.ndarray:
    """A compressed member, read into memory once its header is checked against the bytes the archive says it
    holds: a header claiming (1e7, 1e7) would otherwise allocate 728 TiB before reading a byte."""
    with archive.open(member) as stream:
        version = np.lib.format.read_magic(stream)
        read_header = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
        shape, _, dtype = read_header(stream)
    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if claimed > member.file_size:
        raise ValueError(f"{member.filename}: its header claims a {'x'.join(map(str, shape))} {dtype} array "
                         f"({claimed} bytes), more than the {member.file_size} bytes the archive holds for it")
    with archive.open(member) as stream:
        return np.lib.format.read_array(stream, allow_pickle=False)
