"""Outcomes that depend on the kernels a framework picks: each kernel path's cells are expected right.

TensorFlow runs float16 through oneDNN on CPUs with avx512_fp16 (and a few others) unless TF_ENABLE_ONEDNN_OPTS=0;
the C = 262144 float16 cells of the Keras from_logits=False APIs give other outcomes there. This runs those cells
with the switch off and on, each in its own process (TensorFlow reads it at import), and checks every record met
the expectation of the kernel path this machine takes under that switch.
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from xentcompat import expectations, machine
from xentcompat.results.documents import read_results

CASE = "many-classes-256k-zeros"
APIS = ("keras.losses.SparseCategoricalCrossentropy(from_logits=False)",
        "keras.losses.SparseCategoricalCrossentropy(from_logits=False)[external probs]",
        "keras.losses.CategoricalCrossentropy(from_logits=False)",
        "keras.losses.CategoricalCrossentropy(from_logits=False)[external probs]")


def onednn_path_taken(switch: str) -> bool:
    """Whether this machine takes the oneDNN float16 path with TF_ENABLE_ONEDNN_OPTS=`switch`."""
    paths = {variant.path.id: variant.path for entry in expectations.load("keras") for variant in entry.kernel}
    return paths["onednn-float16"].taken_on(machine.description({"TF_ENABLE_ONEDNN_OPTS": switch}), "eager")


@pytest.mark.parametrize("switch", ["0", "1"])
def test_onednn_switch_cells_meet_their_kernel_paths_expectation(tmp_path, target, switch):
    if target != "tensorflow":
        pytest.skip("oneDNN kernel paths are TensorFlow's")
    results = tmp_path / "shard.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "xentcompat/matrix/test_agreement.py", "-q", "-p", "no:cacheprovider",
         "--framework", "tensorflow", "--mode", "eager", "--dtype", "float16", "--results", str(results),
         "-k", "256k and zeros and from_logits and not True"],
        capture_output=True, text=True, env={**os.environ, "TF_ENABLE_ONEDNN_OPTS": switch})
    assert done.returncode == 0, done.stdout[-3000:]
    document = read_results(results)
    records = {r["api"]: r for r in document["records"] if r["case"] == CASE}
    assert sorted(records) == sorted(APIS)
    assert document["environments"][0]["kernel_switches"]["TF_ENABLE_ONEDNN_OPTS"] == switch
    taken = onednn_path_taken(switch)
    for record in records.values():
        assert record["expected"]["varies"], record["api"]
        assert record["expected"]["kernel_path"] == ("onednn-float16" if taken else None)
        assert (record["loss"]["outcome"], record["grad"]["outcome"]) == (record["expected"]["loss"],
                                                                           record["expected"]["grad"])
