"""Fake linear cross-entropy APIs (framework "fake"): the reference's own values, and a defect in the weight gradient
only (that of the summed loss where the mean is due), each judged on dL/dh and, as its `[dW]` twin, on dL/dW."""

from __future__ import annotations

from dataclasses import replace

from xentcompat.adapters.base import register
from xentcompat.reference.linear_xent import solve_linear

LINEAR = frozenset({"linear"})


def versions() -> dict[str, str]:
    return {"fake": "1.0"}


def available_devices() -> dict[str, str]:
    return {"cpu": "cpu"}


def repro(api, call, logits_code) -> str:
    return f"{api.id}(h, W, y)"


def _exact(call):
    result = solve_linear(call.problem)
    return result.loss, result.grad


def _weight_grad_of_the_sum(call):
    problem = call.problem
    summed = solve_linear(replace(problem, options=replace(problem.options, reduction="sum")))
    result = solve_linear(problem)
    return result.loss, summed.grad if problem.wrt == "weight" else result.grad


for api_id, run in (("fake.linear", _exact), ("fake.linear_sum_weight_grad", _weight_grad_of_the_sum)):
    register("fake", api_id, f"{api_id}(h, W, y)", targets="linear", areas=LINEAR)(run)
    register("fake", api_id + "[dW]", f"{api_id}(h, W, y)", targets="linear-weight", areas=LINEAR)(run)
