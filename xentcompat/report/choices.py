"""The decision table's rows: the realistic choices, written as users write them (each a registered API id)."""

from __future__ import annotations

from dataclasses import dataclass

SPARSE = "keras.losses.SparseCategoricalCrossentropy"


@dataclass(frozen=True)
class Choice:
    framework: str  # as practitioners name it: PyTorch, Keras, JAX, TensorFlow, MLX, Paddle, ONNX Runtime, scikit-learn
    api: str  # the registered API id
    label: str  # the call as users write it
    form: str  # "fused" (logits into the loss), "log-softmax", "softmax first", "double softmax"


CHOICES: tuple[Choice, ...] = (
    Choice("PyTorch", "torch.nn.CrossEntropyLoss", "CrossEntropyLoss(logits)", "fused"),
    Choice("PyTorch", "torch.nn.NLLLoss(log_softmax)", "NLLLoss(log_softmax(logits))", "log-softmax"),
    Choice("PyTorch", "torch.nn.NLLLoss(log(softmax))", "NLLLoss(log(softmax(logits)))", "softmax first"),
    Choice("PyTorch", "torch.nn.CrossEntropyLoss(softmax)", "CrossEntropyLoss(softmax(logits))", "double softmax"),
    Choice("Keras", f"{SPARSE}(from_logits=True)", "SparseCategoricalCrossentropy(from_logits=True)", "fused"),
    Choice("Keras", f"{SPARSE}(from_logits=False)", "Softmax layer, then from_logits=False", "softmax first"),
    Choice("Keras", f"{SPARSE}(from_logits=False)[external probs]", "from_logits=False on external probabilities",
           "softmax first"),
    Choice("Keras", f"{SPARSE}(from_logits=True)[after Softmax]", "Softmax layer, then from_logits=True",
           "double softmax"),
    Choice("JAX", "optax.softmax_cross_entropy_with_integer_labels", "optax.softmax_cross_entropy_with_integer_labels",
           "fused"),
    Choice("JAX", "optax.softmax_cross_entropy", "optax.softmax_cross_entropy(one-hot)", "fused"),
    Choice("JAX", "optax.safe_softmax_cross_entropy", "optax.safe_softmax_cross_entropy(one-hot)", "fused"),
    Choice("JAX", "jax.nn.log_softmax[label]", "-jax.nn.log_softmax(x)[label]", "log-softmax"),
    Choice("JAX", "log(jax.nn.softmax)[label]", "-log(jax.nn.softmax(x))[label]", "softmax first"),
    Choice("TensorFlow", "tf.nn.sparse_softmax_cross_entropy_with_logits",
           "tf.nn.sparse_softmax_cross_entropy_with_logits", "fused"),
    Choice("TensorFlow", "tf.nn.softmax_cross_entropy_with_logits",
           "tf.nn.softmax_cross_entropy_with_logits(one-hot)", "fused"),
    Choice("MLX", "mlx.nn.losses.cross_entropy", "nn.losses.cross_entropy(logits)", "fused"),
    Choice("MLX", "mx.fast.cross_entropy", "mx.fast.cross_entropy(logits)", "fused"),
    Choice("MLX", "mlx.nn.losses.nll_loss(log_softmax)", "nll_loss(x - logsumexp(x))", "log-softmax"),
    Choice("MLX", "mlx.nn.losses.nll_loss(log(softmax))", "nll_loss(log(softmax(x)))", "softmax first"),
    Choice("MLX", "mlx.nn.losses.cross_entropy(softmax)", "cross_entropy(softmax(x))", "double softmax"),
    Choice("Paddle", "paddle.nn.functional.cross_entropy", "F.cross_entropy(logits)", "fused"),
    Choice("Paddle", "paddle.nn.functional.nll_loss(log_softmax)", "F.nll_loss(F.log_softmax(x))", "log-softmax"),
    Choice("Paddle", "paddle.nn.functional.cross_entropy(softmax, use_softmax=False)",
           "F.softmax, then F.cross_entropy(use_softmax=False)", "softmax first"),
    Choice("Paddle", "paddle.nn.functional.nll_loss(log(softmax))", "F.nll_loss(paddle.log(F.softmax(x)))",
           "softmax first"),
    Choice("Paddle", "paddle.nn.functional.cross_entropy(softmax)", "F.cross_entropy(F.softmax(x))",
           "double softmax"),
    Choice("ONNX Runtime", "ort.SoftmaxCrossEntropyLoss", "SoftmaxCrossEntropyLoss(logits)", "fused"),
    Choice("ONNX Runtime", "ort.NegativeLogLikelihoodLoss(LogSoftmax)", "NegativeLogLikelihoodLoss(LogSoftmax(x))",
           "log-softmax"),
    Choice("ONNX Runtime", "ort.NegativeLogLikelihoodLoss(Log(Softmax))",
           "NegativeLogLikelihoodLoss(Log(Softmax(x)))", "softmax first"),
    Choice("ONNX Runtime", "ort.SoftmaxCrossEntropyLoss(Softmax)", "SoftmaxCrossEntropyLoss(Softmax(x))",
           "double softmax"),
    Choice("scikit-learn", "sklearn.metrics.log_loss(softmax)", "log_loss(y, softmax(x))", "softmax first"),
)
