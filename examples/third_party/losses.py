"""Third-party cross-entropy losses as `xentcompat check` callables: timm's `LabelSmoothingCrossEntropy` and
`SoftTargetCrossEntropy`, torchtune's `CEWithChunkedOutputLoss`.

Install them without their dependencies (`pip install --no-deps timm==1.0.31 torchtune==0.6.1`, 24 MiB): their
packages' `__init__` import torchvision (timm) and torchao, datasets, ... (torchtune), which a CPU-only torch 2.13
cannot always take, but the loss modules import torch alone, so they are loaded from their files here.

    xentcompat check examples/third_party/losses.py:timm_label_smoothing --framework torch --options label_smoothing \
        --name timm.loss.LabelSmoothingCrossEntropy
    xentcompat check examples/third_party/losses.py:timm_soft_target --framework torch --targets probs \
        --name timm.loss.SoftTargetCrossEntropy
    xentcompat check examples/third_party/losses.py:torchtune_chunked --framework torch --options ignore_index \
        --name torchtune.modules.loss.CEWithChunkedOutputLoss

`--name` gives the records their API's own name, which the cause entries for timm and torchtune name.
"""

import importlib.util
from pathlib import Path


def _module(package: str, relative: str):
    """`relative` (a file of `package`) as a module of its own, without importing the package."""
    root = Path(importlib.util.find_spec(package).submodule_search_locations[0])
    spec = importlib.util.spec_from_file_location(f"{package}_{Path(relative).stem}", root / relative)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


TIMM = _module("timm", "loss/cross_entropy.py")
TORCHTUNE = _module("torchtune", "modules/loss/ce_chunked_output_loss.py")
CHUNKS = 8  # torchtune's default num_output_chunks


def timm_label_smoothing(logits, labels, label_smoothing=0.0):
    """timm.loss.LabelSmoothingCrossEntropy(smoothing)(x, target): the batch mean."""
    return TIMM.LabelSmoothingCrossEntropy(smoothing=label_smoothing)(logits, labels)


def timm_soft_target(logits, probs):
    """timm.loss.SoftTargetCrossEntropy()(x, target): probability targets, the batch mean."""
    return TIMM.SoftTargetCrossEntropy()(logits, probs)


def torchtune_chunked(logits, labels, ignore_index=-100):
    """torchtune's CEWithChunkedOutputLoss on the rows as one sequence (bsz 1, seq N), its logits cut into the
    chunks a model's output projection gives it (`h.chunk(8, dim=1)`): the mean over the counted tokens."""
    loss = TORCHTUNE.CEWithChunkedOutputLoss(num_output_chunks=CHUNKS, ignore_index=ignore_index)
    return loss(list(logits[None].chunk(CHUNKS, dim=1)), labels[None])
