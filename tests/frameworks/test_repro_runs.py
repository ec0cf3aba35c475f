"""Every reproducer runs as printed: for each API of this env's target, in each mode it implements, the script a
finding prints is executed in a fresh interpreter and computes the loss the adapter measured.

Runs in each framework env (`tox -e torch`, `tox -e keras-jax`, ...) for the target given with `--framework`.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from xentcompat.adapters import base
from xentcompat.reference.cases import by_id
from xentcompat.run.harness import cells

EAGER_CASES = ("random-moderate", "reduction-none", "class-weights", "ignore-index", "label-smoothing",
               "soft-targets", "extra-dims")
COMPILED_CASES = ("random-moderate", "class-weights")  # each compiled script compiles afresh: a few are enough

RUN_ALL = """
import json, linecache, sys
import numpy as np

scripts, out = json.load(open(sys.argv[1])), {}
for number, (name, code) in enumerate(scripts.items()):
    filename = f"repro_{number}.py"  # as a user saves it: a plain name, its source readable (to_static reads it)
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    namespace = {"__name__": "__main__"}
    exec(compile(code, filename, "exec"), namespace)
    loss = namespace["loss"]
    loss = loss.detach().cpu().double() if hasattr(loss, "detach") else loss
    out[name] = np.asarray(loss, dtype=np.float64).ravel().tolist()
json.dump(out, open(sys.argv[2], "w"))
"""


def chosen_cells(target: str) -> list:
    apis = base.apis(target)
    eager = cells(apis, [by_id(case) for case in EAGER_CASES], ["float32"])
    compiled = cells(apis, [by_id(case) for case in COMPILED_CASES], ["float32"], modes=("compiled",))
    return eager + compiled


def test_reproducers_compute_the_measured_loss(tmp_path, target):
    measured, scripts = {}, {}
    for cell in chosen_cells(target):
        call = cell.call()
        captured = base.capture(cell.api, call)
        assert isinstance(captured, base.Returned), f"{cell.id}: {captured}"
        measured[cell.id] = np.ravel(captured.loss)
        scripts[cell.id] = cell.api.adapter.repro(cell.api, call, cell.case.logits_code)
    (tmp_path / "scripts.json").write_text(json.dumps(scripts))
    done = subprocess.run([sys.executable, "-c", RUN_ALL, str(tmp_path / "scripts.json"), str(tmp_path / "out.json")],
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    reproduced = json.loads((tmp_path / "out.json").read_text())
    assert measured and reproduced.keys() == measured.keys()
    for name, loss in measured.items():
        np.testing.assert_allclose(reproduced[name], loss, rtol=1e-6, equal_nan=True,
                                   err_msg=f"{name}: the reproducer computes another loss\n{scripts[name]}")
