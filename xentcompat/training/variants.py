"""The loss variants, as data: what users write at the end of a model, per framework family.

Four kinds, the same in every framework where the framework has them:

| kind | what the model ends in, and the loss |
|---|---|
| `fused` | logits into the fused loss (the reference) |
| `double-softmax` | a softmax layer, then the fused loss: softmax applied twice |
| `softmax-then-log` | a softmax layer, then the log of the probabilities (`NLLLoss(log(softmax))`, |
| | `log(jax.nn.softmax)`, Keras `from_logits=False`) |
| `forgotten-flag` | logits into a loss that expects probabilities (`from_logits=False` left at its default) |

`api` is the id the numerical matrix registers for the same call (xentcompat/adapters/*.py), so the report links a
training variant to the findings measured for it; a variant the matrix does not run keeps an id in the same style
(`matrix_api` False). `causes` are the ids of the numerical causes the variant's mechanism is about.
"""

from __future__ import annotations

from dataclasses import dataclass

from xentcompat.adapters.base import TARGETS


SPARSE = "keras.losses.SparseCategoricalCrossentropy"


@dataclass(frozen=True)
class Variant:
    kind: str
    api: str
    expression: str
    matrix_api: bool = True
    causes: tuple[str, ...] = ()
    softmax_layer: bool = False  # Keras: the model ends in keras.layers.Softmax
    from_logits: bool = True  # Keras: the loss's from_logits


VARIANTS: dict[str, tuple[Variant, ...]] = {
    "torch": (
        Variant("fused", "torch.nn.CrossEntropyLoss", "torch.nn.CrossEntropyLoss()(z, y)"),
        Variant("double-softmax", "torch.nn.CrossEntropyLoss(softmax)",
                "torch.nn.CrossEntropyLoss()(torch.softmax(z, dim=1), y)", causes=("softmax-twice",)),
        Variant("softmax-then-log", "torch.nn.NLLLoss(log(softmax))",
                "torch.nn.NLLLoss()(torch.log(torch.softmax(z, dim=1)), y)", causes=("log-of-underflowed-softmax",)),
    ),
    "jax": (
        Variant("fused", "optax.softmax_cross_entropy_with_integer_labels",
                "optax.softmax_cross_entropy_with_integer_labels(z, y).mean()"),
        Variant("double-softmax", "optax.softmax_cross_entropy_with_integer_labels(softmax)",
                "optax.softmax_cross_entropy_with_integer_labels(jax.nn.softmax(z), y).mean()",
                causes=("softmax-twice",)),
        Variant("softmax-then-log", "log(jax.nn.softmax)[label]",
                "-jnp.take_along_axis(jnp.log(jax.nn.softmax(z, axis=-1)), y[:, None], axis=-1).mean()",
                causes=("log-of-underflowed-softmax",)),
    ),
    "paddle": (
        Variant("fused", "paddle.nn.functional.cross_entropy", "F.cross_entropy(z, y)"),
        Variant("double-softmax", "paddle.nn.functional.cross_entropy(softmax)", "F.cross_entropy(F.softmax(z), y)",
                causes=("softmax-twice",)),
        Variant("softmax-then-log", "paddle.nn.functional.nll_loss(log(softmax))",
                "F.nll_loss(paddle.log(F.softmax(z)), y)", causes=("softmax-clips-at-minus-64",)),
    ),
    "mlx": (
        Variant("fused", "mlx.nn.losses.cross_entropy", "nn.losses.cross_entropy(z, y, reduction='mean')"),
        Variant("double-softmax", "mlx.nn.losses.cross_entropy(softmax)",
                "nn.losses.cross_entropy(mx.softmax(z, axis=-1), y, reduction='mean')", causes=("softmax-twice",)),
        Variant("softmax-then-log", "mlx.nn.losses.nll_loss(log(softmax))",
                "nn.losses.nll_loss(mx.log(mx.softmax(z, axis=-1)), y, reduction='mean')",
                causes=("log-of-underflowed-softmax",)),
    ),
    "keras": (
        Variant("fused", f"{SPARSE}(from_logits=True)", f"{SPARSE}(from_logits=True)(y, z)"),
        Variant("double-softmax", f"{SPARSE}(from_logits=True)[after Softmax]",
                f"{SPARSE}(from_logits=True)(y, keras.layers.Softmax()(z))", causes=("keras-double-softmax",),
                softmax_layer=True),
        Variant("softmax-then-log", f"{SPARSE}(from_logits=False)",
                f"{SPARSE}(from_logits=False)(y, keras.layers.Softmax()(z))", causes=("keras-prob-clip",),
                softmax_layer=True, from_logits=False),
        Variant("forgotten-flag", f"{SPARSE}(from_logits=False)[logits]", f"{SPARSE}(from_logits=False)(y, z)",
                matrix_api=False, causes=("keras-prob-clip",), from_logits=False),
    ),
}
FAMILIES = {name: target.training for name, target in TARGETS.items() if target.training}  # target -> family


def family(target: str) -> str:
    """The framework family whose loop and variants a target trains with."""
    return FAMILIES[target]


def loop_module(target: str) -> str:
    """The module of a target's training loop: `xentcompat.training.<family>_loop`."""
    return f"xentcompat.training.{family(target)}_loop"


def variants_for(target: str) -> tuple[Variant, ...]:
    return VARIANTS[family(target)]


def variant_named(target: str, kind: str) -> Variant:
    return next(v for v in variants_for(target) if v.kind == kind)
