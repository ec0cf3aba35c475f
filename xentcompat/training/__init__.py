"""Training evidence: what each loss API does to learning, measured in every framework.

One small experiment, the same everywhere: scikit-learn's bundled digits (1,797 8×8 images, no download), an MLP
64-64(ReLU)-10, SGD with momentum, fixed seeds. The initial weights and the order of the batches come from numpy, so
every framework starts from the same numbers and sees the same batches; only the loss variant (the expression users
write) and the framework differ.

| module | what it holds |
|---|---|
| `experiment` | the configuration and the regimes (the seed experiment and the stress regimes) |
| `data` | the split, the per-epoch batch order, the Glorot-uniform initial weights, a numpy forward pass |
| `variants` | the loss variants as data, named as users write them (and as the adapters register them) |
| `measure` | what is measured per step and per epoch (accuracy, loss, gradient norm, non-finite steps, saturation) |
| `loop` | the training loop every framework shares: a framework only supplies a step and a forward pass |
| `torch_loop`, `jax_loop`, `keras_loop` | the framework's step, as users write one |
| `document` | training.json: its schema, strict-JSON writing, checked reading |
| `worker` | one target's experiment in its own process (the Keras backend is fixed at import) |
| `runner` | `xentcompat train`: one worker per target, their results in one training.json and a report section |
"""
