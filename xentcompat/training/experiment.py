"""The experiment as data: the configuration every framework trains with, and the regimes.

The `standard` regime is the seed experiment (SGD lr 0.01, momentum 0.9, float32). The stress regimes push towards
the confident outputs where the numerical findings bite: `high-lr` (lr 0.3) drives the logits far apart within a
few epochs, so a wrongly classified row's target probability can fall below Keras' 1e-7 clip or underflow to 0 in
float32; `float16` and `bfloat16` run the whole model (weights, activations, optimizer state) in the 16-bit dtype,
where a probability underflows much sooner (float16: below 6e-8, a logit gap of about 17).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

DEFAULT_SEEDS = 5
DEFAULT_EPOCHS = 10
BATCH_SIZE = 32
MOMENTUM = 0.9
HIDDEN_UNITS = 64
CLASSES = 10
TEST_FRACTION = 0.25
SPLIT_SEED = 0
KERAS_EPSILON = 1e-7  # keras.config.epsilon(): from_logits=False clips probabilities to [1e-7, 1 - 1e-7]


@dataclass(frozen=True)
class Regime:
    """How one training run is set up besides the loss: learning rate and the dtype of the whole model."""

    name: str
    learning_rate: float
    dtype: str
    stress: bool
    description: str


REGIMES: dict[str, Regime] = {regime.name: regime for regime in (
    Regime("standard", 0.01, "float32", False, "SGD lr 0.01, momentum 0.9, float32: the seed experiment"),
    Regime("high-lr", 0.3, "float32", True,
           "SGD lr 0.3, momentum 0.9, float32: thirty times the seed's step, to drive the logits apart"),
    Regime("float16", 0.01, "float16", True,
           "SGD lr 0.01, momentum 0.9, the whole model in float16 (weights, activations, optimizer state; the loss "
           "in the framework's default dtype for it)"),
    Regime("bfloat16", 0.01, "bfloat16", True,
           "SGD lr 0.01, momentum 0.9, the whole model in bfloat16 (weights, activations, optimizer state; the loss "
           "in the framework's default dtype for it)"),
)}


@dataclass(frozen=True)
class Config:
    """One `xentcompat train` run: seeds 0..seeds-1, each regime, each variant, each target."""

    seeds: int = DEFAULT_SEEDS
    epochs: int = DEFAULT_EPOCHS
    regimes: tuple[str, ...] = tuple(REGIMES)
    batch_size: int = BATCH_SIZE
    momentum: float = MOMENTUM
    hidden_units: int = HIDDEN_UNITS
    test_fraction: float = TEST_FRACTION
    split_seed: int = SPLIT_SEED

    @property
    def seed_list(self) -> list[int]:
        return list(range(self.seeds))

    def regime_list(self) -> list[Regime]:
        return [REGIMES[name] for name in self.regimes]


GRAD_NORM_DEFINITION = ("L2 (Frobenius) norm of d(batch mean loss)/dz over the batch, z = the output Dense layer's "
                        "pre-activation (the logits; the input of the softmax layer where the variant has one), "
                        "averaged over the epoch's steps")
NONFINITE_DEFINITION = "a step whose loss or d(loss)/dz has a NaN or infinite element (training goes on)"


def config_json(config: Config) -> dict:
    """The configuration as training.json records it: everything needed to run the experiment again."""
    return {
        "dataset": {"name": "sklearn.datasets.load_digits", "inputs": 64, "classes": CLASSES,
                    "scaling": "pixel / 16, in [0, 1], float32",
                    "split": f"sklearn.model_selection.train_test_split(test_size={config.test_fraction}, "
                             f"stratify=labels, random_state={config.split_seed})"},
        "model": f"Dense({config.hidden_units}, relu) -> Dense({CLASSES}) [-> Softmax, where the variant has it]",
        "initialisation": "Glorot-uniform kernels, zero biases, drawn in numpy from np.random.default_rng(seed) "
                          "(hidden kernel first, then output kernel), loaded into each framework",
        "data_order": "per epoch e, np.random.default_rng([seed, e + 1]).permutation(train rows); batches in that "
                      "order, the last one smaller",
        "optimizer": {"name": "SGD", "momentum": config.momentum, "nesterov": False},
        "batch_size": config.batch_size,
        "epochs": config.epochs,
        "seeds": config.seed_list,
        "regimes": {name: asdict(REGIMES[name]) for name in config.regimes},
        "grad_norm": GRAD_NORM_DEFINITION,
        "nonfinite": NONFINITE_DEFINITION,
        "keras_epsilon": KERAS_EPSILON,
    }
