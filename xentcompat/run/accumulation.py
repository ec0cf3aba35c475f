"""Gradient accumulation: one batch run as micro-batches, the way training loops accumulate them.

A step of batch B split into micro-batches B_1 .. B_K must see the loss and gradient of B. With a mean over the
batch's counted targets (D = the targets that are not ignored, or their class weights; Keras: the positions),

    documented ("sum-over-count"):  L = (sum_k sum_{i in B_k} l_i) / D          = the full batch's mean
    naive      ("mean-of-means"):   L = (1/K) sum_k (sum_{i in B_k} l_i) / D_k  = the full mean only if every D_k = D/K

and the gradient the same way (the documented recipe scales each micro-batch's gradient of its sum by 1 / D; the
naive one each micro-batch's gradient of its mean by 1 / K). With micro-batches of uneven counts the naive recipe
weights a target of a small micro-batch more than one of a large micro-batch: the loss it reports and the gradient
it steps along are not the batch's (huggingface/transformers#34191, fixed there with `num_items_in_batch`).

The API runs once per micro-batch (reduction "sum" for the documented recipe, "mean" for the naive one; an API
that takes the mean's denominator from the caller instead, transformers' `num_items_in_batch`, gets the batch's
count for the documented recipe and its micro-batch losses are added); the combination is float64 arithmetic on its
results, so what is judged is the API's own micro-batch values.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from xentcompat.adapters.base import AdapterFailed, Call, LossApi, Raised, Returned, capture
from xentcompat.reference.micro_batches import Accumulation, micro_batches
from xentcompat.reference.options import terms


def accumulate(api: LossApi, call: Call, accumulation: Accumulation) -> Returned | Raised | AdapterFailed:
    """The full batch's mean loss and gradient as `accumulation`'s recipe builds them from the API's micro-batch
    results; the first micro-batch failure (raised, or the adapter's own) stands for the whole step."""
    counted = accumulation.reduction == "sum" and takes_count(api)
    count = terms(call.problem).denominator
    parts = micro_batches(call.problem, accumulation, "mean" if counted else None)
    num_items = int(count) if counted else None
    results = [capture(api, replace(call, problem=part, num_items=num_items)) for part in parts]
    failed = [result for result in results if not isinstance(result, Returned)]
    if failed:
        return failed[0]
    losses = np.array([float(np.asarray(result.loss)) for result in results])
    scale = 1.0 if counted else 1.0 / count if accumulation.reduction == "sum" else 1.0 / len(parts)
    grads = None if api.no_gradient is not None else \
        np.concatenate([np.asarray(result.grad, np.float64) for result in results]) * scale
    return Returned(np.sum(losses) * scale, grads, sum(result.seconds for result in results))


def takes_count(api: LossApi) -> bool:
    """Whether the API divides by a count the caller passes (and has no reduction of its own to sum with)."""
    return "reduction" not in api.supports and "num_items" in api.supports


def can_run(api: LossApi, accumulation: Accumulation) -> bool:
    """Whether the API can run the recipe: any API averages means; summing needs a reduction or the mean's count."""
    return (accumulation.recipe == "mean-of-means" or "reduction" in api.supports
            or "num_items" in api.supports)


def run(api: LossApi, call: Call, accumulation: Accumulation | None) -> Returned | Raised | AdapterFailed:
    """The cell's call: the batch at once, or its micro-batches accumulated."""
    return capture(api, call) if accumulation is None else accumulate(api, call, accumulation)


def repro(api: LossApi, call: Call, accumulation: Accumulation) -> str:
    """The micro-batch calls, one reproducer each, and how the recipe combines them."""
    parts = micro_batches(call.problem, accumulation)
    count = terms(call.problem).denominator
    if accumulation.reduction == "sum" and takes_count(api):
        rule = f"loss = sum of the {len(parts)} losses, each called with num_items_in_batch = {count:g} (the batch's count)"
    elif accumulation.reduction == "sum":
        rule = f"loss = (sum of the {len(parts)} losses) / {count:g} (the batch's count)"
    else:
        rule = f"loss = (sum of the {len(parts)} losses) / {len(parts)} (the mean of the micro-batch means)"
    scripts = [f"# micro-batch {k + 1} of {len(parts)} ({size} rows)\n"
               + api.adapter.repro(api, replace(call, problem=part), None)
               for k, (part, size) in enumerate(zip(parts, accumulation.sizes))]
    return "\n\n".join(scripts + [f"# {accumulation.recipe}: {rule}; the gradient likewise"])
