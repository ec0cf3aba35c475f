"""Plant known defects in a scratch copy of the checkout, one at a time, and show that the suite fails on each.

    python tools/plant_defects.py [--only NAME ...]

Each plant edits one file of the copy (the edit must apply exactly once) and runs the tests that should notice it;
the same tests on the unplanted copy must pass first, so a failure is the plant's doing. Prints a table and exits 1
if any plant survives. Frameworks the chosen tests need must be installed in this interpreter (`tox -e mutation`).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
REFERENCE_TESTS = ("tests/test_error_model.py", "tests/test_reference.py", "tests/test_reference_mpmath.py",
                   "tests/test_reference_semantics.py", "tests/test_verdict.py")


@dataclass(frozen=True)
class Plant:
    name: str
    path: str
    old: str  # "" appends `new` to the file
    new: str
    tests: tuple[str, ...]


PLANTS = (
    Plant("tolerance x10", "xentcompat/reference/errors.py",
          "TOLERANCE_UNITS = TOLERANCE_MARGIN * CALIBRATED_MAX_UNITS",
          "TOLERANCE_UNITS = 10 * TOLERANCE_MARGIN * CALIBRATED_MAX_UNITS", REFERENCE_TESTS),
    Plant("lse + 1 in the reference", "xentcompat/reference/softmax_xent.py",
          'outputs["lse"][rows] = m + log1p_t', 'outputs["lse"][rows] = m + log1p_t + 1', REFERENCE_TESTS),
    Plant("softmax x 1e6 in the reference", "xentcompat/reference/softmax_xent.py",
          "np.divide(out, normalizer.total[rows, None], out=out)",
          "np.divide(out, normalizer.total[rows, None] / 1e6, out=out)", REFERENCE_TESTS),
    Plant("1 - p by subtraction", "xentcompat/reference/softmax_xent.py",
          "one_minus_p_y = np.where(labels == k, t / s, (s - e_y) / s)",
          "one_minus_p_y = np.where(labels == k, 1.0 - 1.0 / s, (s - e_y) / s)", REFERENCE_TESTS),
    Plant("NameError in the JAX adapter's label conversion", "xentcompat/adapters/jax.py",
          "jnp.asarray(native(call.problem.labels, call.problem.options.extra_dims))",
          "jnp.asarray(nativ(call.problem.labels, call.problem.options.extra_dims))",
          ("xentcompat/matrix/test_labels.py", "--framework", "jax", "-k", "labels-too-many or labels-float")),
    Plant("cause naming an API that does not exist", "xentcompat/expectations/causes/semantics.toml", "",
          '\n[[softmax-twice.cells]]\nframework = "torch"\napis = ["torch.nn.CrossEntropyLos"]\n'
          'cases = ["random-moderate"]\nloss = "nan"\ngrad = "ok"\n',
          ("xentcompat/matrix/test_agreement.py", "--framework", "torch", "--dtype", "float32", "-k", "random-moderate")),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", help="names of the plants to run (default: all)")
    args = parser.parse_args(argv)
    plants = [p for p in PLANTS if not args.only or p.name in args.only]
    missing = [(p.name, _framework(p)) for p in plants
               if _framework(p) and importlib.util.find_spec(_framework(p)) is None]
    for name, framework in missing:
        print(f"plant {name!r} not run: {framework} is not installed in this interpreter", file=sys.stderr)
    rows = [(plant.name, *_try(plant)) for plant in plants if plant.name not in dict(missing)]
    print("| defect planted | unplanted run | planted run | caught |\n|---|---|---|---|")
    for name, control, planted in rows:
        print(f"| {name} | exit {control} | exit {planted} | {'yes' if control == 0 and planted != 0 else 'NO'} |")
    return 0 if not missing and all(control == 0 and planted != 0 for _, control, planted in rows) else 1


def _framework(plant: Plant) -> str | None:
    """The framework the plant's tests run (their --framework), or None."""
    return plant.tests[plant.tests.index("--framework") + 1] if "--framework" in plant.tests else None


def _try(plant: Plant) -> tuple[int, int]:
    """(exit status of the tests on the unplanted copy, on the planted copy)."""
    with tempfile.TemporaryDirectory(prefix="xentcompat-plant-") as scratch:
        copy = Path(scratch) / "checkout"
        _copy_checkout(copy)
        control = _pytest(copy, plant.tests)
        target = copy / plant.path
        text = target.read_text()
        if plant.old and text.count(plant.old) != 1:
            raise SystemExit(f"plant {plant.name!r}: {plant.old!r} occurs {text.count(plant.old)} times in "
                             f"{plant.path}")
        target.write_text(text.replace(plant.old, plant.new) if plant.old else text + plant.new)
        return control, _pytest(copy, plant.tests)


def _copy_checkout(destination: Path) -> None:
    """The checkout's tracked files as they are now (uncommitted edits included)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True).stdout
    for name in filter(None, listed.decode().split("\0")):
        source = ROOT / name
        if source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name)


def _pytest(checkout: Path, tests: tuple[str, ...]) -> int:
    environment = {**os.environ, "XENTCOMPAT_HYPOTHESIS_PROFILE": "ci"}
    command = [sys.executable, "-m", "pytest", "-q", "-x", "-p", "no:cacheprovider", *tests]
    return subprocess.run(command, cwd=checkout, env=environment, capture_output=True).returncode


if __name__ == "__main__":
    sys.exit(main())
