"""Speed and memory: each loss API's forward + backward at LLM shapes, against the machine's memory-bandwidth floor.

`xentcompat bench` runs every target in its own processes (one long-lived child per target and device, a fresh one
after a child is lost, as `run` and `train` run a target per process) and writes bench.json, which `xentcompat
merge` accepts beside the shards.

| module | what it holds |
|---|---|
| `grid` | shapes (N × V), dtypes, devices: parsing and selection |
| `floor` | the memory-bandwidth floor: the bytes an API must move, the machine's bandwidth, the ratios |
| `timing` | repeats, their median and spread, the first call (compile) apart, peak memory (VmHWM, CUDA) |
| `inputs` | the same normal logits, labels and probabilities for every framework, made by row blocks |
| `steps` | the timing path: which framework call an API's adapter function makes, timed without float64 conversion |
| `steps_torch`, `steps_jax`, `steps_tf`, `steps_keras` | each framework's inputs, gradient step and device sync |
| `worker` | one target's process: its APIs listed, then one measurement after another, each on request |
| `runner` | `xentcompat bench`: the workers, the bandwidth, bench.json and its report section |
| `document` | bench.json: its schema, checked reading, merging |
"""
