"""The optional compiled row pass of the reference (xentcompat/reference/_rows.c); metadata lives in pyproject.toml.

It is built where glibc's vector exp (libmvec) is there to call, x86_64 Linux; elsewhere, or when it fails to build,
the reference runs on numpy alone (same numbers within a few float64 ulps, slower)."""

import platform
import sys

from setuptools import Extension, setup


def _row_pass() -> list[Extension]:
    if not (sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")):
        return []
    return [Extension("xentcompat.reference._rows", ["xentcompat/reference/_rows.c"], optional=True,
                      extra_compile_args=["-O3", "-fopenmp-simd", "-fno-math-errno"], libraries=["mvec", "m"])]


setup(ext_modules=_row_pass())
