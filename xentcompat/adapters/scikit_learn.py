"""scikit-learn: `sklearn.metrics.log_loss`, the metric people check a model's loss with; the loss alone.

`log_loss` takes probabilities (what `predict_proba` returns), so the API is the softmax-first form
`log_loss(y, softmax(x), labels=range(C))`, the softmax scikit-learn's own (`sklearn.utils.extmath.softmax`, the
one `LogisticRegression.predict_proba` ends in) computed in the cell's dtype. `labels` names every class, as a user
must when a batch lacks some. Class weights are `sample_weight=w[y]`, which makes `log_loss`'s weighted average the
weighted mean over the weights of the targets; the mean is its only reduction used here (`normalize=False` sums,
there is no per-row form). A metric has no gradient: every cell's gradient is `absent`.
"""

from __future__ import annotations

import numpy as np
import sklearn
from sklearn.metrics import log_loss as sklearn_log_loss
from sklearn.utils.extmath import softmax

from xentcompat.adapters.base import Call, register
from xentcompat.adapters.repro import array_code
from xentcompat.reference.dtypes import float_type

NO_GRADIENT = "sklearn.metrics.log_loss is a metric on numpy arrays: scikit-learn has no autodiff"


def versions() -> dict[str, str]:
    return {"sklearn": sklearn.__version__}


def available_devices() -> dict[str, str]:
    return {"cpu": "cpu"}


def device_alive(kind: str) -> None:
    """numpy on the CPU: nothing can leave it unusable."""


@register("sklearn", "sklearn.metrics.log_loss(softmax)", "log_loss(y, softmax(x), labels=range(C){options})",
          supports=frozenset({"weight"}), mean_over="weight", no_gradient=NO_GRADIENT)
def log_loss_of_softmax(call: Call):
    problem, options = call.problem, call.problem.options
    probabilities = softmax(problem.logits.astype(float_type(call.dtype).numpy_type))
    weight = None if options.weight is None else np.asarray(options.weight, np.float64)[problem.labels]
    loss = sklearn_log_loss(problem.labels, probabilities, labels=np.arange(problem.num_classes),
                            sample_weight=weight)
    return np.float64(loss), None


def repro(api, call: Call, logits_code: str | None) -> str:
    """A copy-paste script making the same call."""
    problem, options = call.problem, call.problem.options
    source = array_code(problem.logits, "logits") if logits_code is None else logits_code
    dtype = "ml_dtypes.bfloat16" if call.dtype == "bfloat16" else f"np.{call.dtype}"
    lines = ["import numpy as np", "import ml_dtypes", "from sklearn.metrics import log_loss",
             "from sklearn.utils.extmath import softmax", "",
             f"x = np.asarray({source}, dtype=np.float64).astype({dtype})",
             f"y = np.asarray({array_code(problem.labels, 'labels')}, dtype=np.{problem.labels.dtype.name})"]
    weight = ""
    if options.weight is not None:
        lines.append(f"w = np.asarray({list(options.weight)}, dtype=np.float64)")
        weight = ", sample_weight=w[y]"
    lines += [f"loss = log_loss(y, softmax(x), labels=np.arange({problem.num_classes}){weight})", "print(loss)"]
    return "\n".join(lines)
