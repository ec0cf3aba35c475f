"""The error model's verdicts on a user's own batch (`--cases`), through the shard as `xentcompat run` drives it.

Offset logits: the loss is shift invariant, so an API that rounds its log-sum-exp at the logits' magnitude
(optax's integer-label loss) is inaccurate in bfloat16 and float16, while torch's fused loss stays ok. Softmax
applied twice is inaccurate on moderate logits in bfloat16. On logits [[40, 0, 0, 0]], label 0, the gradient
elements of 4e-18 that Keras' probability clip returns as 0 are no error against the row: ok.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from xentcompat.results.documents import read_results

OFFSET = (np.random.default_rng(1).normal(0, 1, (4, 10)) + 1e4).tolist()
MODERATE = np.random.default_rng(0).normal(0, 3, (8, 10)).tolist()
CASES = {"cases": [
    {"id": "user-offset-1e4", "logits": OFFSET, "labels": [0, 1, 2, 3], "dtypes": ["bfloat16", "float16"]},
    {"id": "user-moderate", "logits": MODERATE, "labels": list(range(8)), "dtypes": ["bfloat16"]},
    {"id": "user-confident-40", "logits": [[40.0, 0.0, 0.0, 0.0]], "labels": [0], "dtypes": ["float32"]},
]}
# target -> (api, case, dtype) -> (loss, grad) the error model must give
EXPECTED = {
    "torch": {("torch.nn.CrossEntropyLoss", "user-offset-1e4", "bfloat16"): ("ok", "ok"),
              ("torch.nn.CrossEntropyLoss", "user-offset-1e4", "float16"): ("ok", "ok"),
              ("torch.nn.CrossEntropyLoss(softmax)", "user-moderate", "bfloat16"): ("inaccurate", "inaccurate")},
    "jax": {("optax.softmax_cross_entropy_with_integer_labels", "user-offset-1e4", "bfloat16"): ("inaccurate", "ok"),
            ("optax.softmax_cross_entropy_with_integer_labels", "user-offset-1e4", "float16"): ("inaccurate", "ok"),
            ("optax.softmax_cross_entropy", "user-offset-1e4", "bfloat16"): ("ok", "ok")},
}
EXPECTED["mlx"] = {("mx.fast.cross_entropy", "user-offset-1e4", "bfloat16"): ("inaccurate", "ok"),
                   ("mlx.nn.losses.nll_loss(log_softmax)", "user-offset-1e4", "float16"): ("inaccurate", "ok"),
                   ("mlx.nn.losses.cross_entropy", "user-offset-1e4", "bfloat16"): ("ok", "ok"),
                   ("mlx.nn.losses.cross_entropy(softmax)", "user-moderate", "bfloat16"): ("inaccurate", "inaccurate")}
# target -> (api, case, dtype) -> the finding: a user's batch is explained by the cause whose mechanism it meets
EXPLAINED = {"mlx": {("mx.fast.cross_entropy", "user-offset-1e4", "bfloat16"): "XC-optax-lse-minus-logit",
                     ("mlx.nn.losses.nll_loss(log_softmax)", "user-offset-1e4", "float16"): "XC-optax-lse-minus-logit",
                     ("mlx.nn.losses.cross_entropy(softmax)", "user-moderate", "bfloat16"): "XC-softmax-twice"}}
KERAS_FALSE = ("keras.losses.SparseCategoricalCrossentropy(from_logits=False)",
               "keras.losses.SparseCategoricalCrossentropy(from_logits=False)[external probs]")
for keras_target in ("tensorflow", "keras-jax", "keras-torch"):
    EXPECTED[keras_target] = {(api, "user-confident-40", "float32"): ("ok", "ok") for api in KERAS_FALSE}


def test_user_cases_get_the_error_models_verdicts(tmp_path, target):
    if target not in EXPECTED:
        pytest.skip(f"no user-case verdicts listed for {target}")
    cases = tmp_path / "mine.json"
    cases.write_text(json.dumps(CASES))
    results = tmp_path / "shard.json"
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "xentcompat/matrix/test_agreement.py", "-q", "-p", "no:cacheprovider",
         "--framework", target, "--mode", "eager", "--cases", str(cases), "--only-cases", "--results", str(results)],
        capture_output=True, text=True)
    records = {(r["api"], r["case"], r["dtype"]): r for r in read_results(results)["records"]}
    for key, outcomes in EXPECTED[target].items():
        record = records[key]
        assert (record["loss"]["outcome"], record["grad"]["outcome"]) == outcomes, (key, record["loss"],
                                                                                    record["grad"])
    for key, finding in EXPLAINED.get(target, {}).items():
        assert records[key]["finding"] == finding, (key, records[key]["finding"])
    assert done.returncode in (0, 1), done.stdout[-2000:]
