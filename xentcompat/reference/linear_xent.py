"""Float64 linear cross-entropy: the loss of the logits z = h @ W.T (+ b), and its gradients with respect to the
hidden states h (N × D), the weight W (V × D) and the bias b (V,).

    L(h, W, b) = softmax_cross_entropy(z, y),   z_ij = sum_k h_ik W_jk + b_j

with every option of `softmax_xent` (reduction, class weights, ignore_index, label smoothing). With G = dL/dz (N × V,
the softmax reference's gradient of the reduced loss: a mean's 1 / D already in it, an ignored row 0):

    dL/dh = G @ W        (N × D)
    dL/dW = G.T @ h      (V × D)
    dL/db = sum_i G_i    (V,)

h, W and b hold the values the framework holds (already rounded to the dtype). For float16, bfloat16 and float32
values every product h_ik W_jk is exact in float64 (2 × 24 significant bits < 53) and the float64 sums carry an error
of at most D 2^-53 sum_k |h_ik W_jk|, 2^-29 D of a float32 unit: the reference is exact for the dtypes it judges. For
float64 values it is a correctly rounded-per-op float64 computation like the one it judges, within the same bound
(`linear_errors`); calibration measures both against mpmath.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property

import numpy as np

from xentcompat.reference.options import Options, Problem, validate
from xentcompat.reference.softmax_xent import Result, solve


@dataclass(frozen=True, eq=False)
class LinearProblem:
    """Hidden states (N × D), the linear weight (V × D), an optional bias (V,), class-index labels (N,) and options,
    as float64 arrays of the dtype's values; `wrt` names the gradient a cell judges ("hidden": dL/dh, "weight":
    dL/dW)."""

    hidden: np.ndarray
    weight: np.ndarray
    labels: np.ndarray
    bias: np.ndarray | None = None
    options: Options = Options()
    wrt: str = "hidden"
    probs: None = field(default=None, init=False)  # class-index targets only: the fused API takes no probabilities
    _memo: dict = field(default_factory=dict, init=False, repr=False)  # facts computed once (units per dtype)

    def remembered(self, key, compute):
        """`compute()`, computed on the first ask for `key` and kept with the problem."""
        if key not in self._memo:
            self._memo[key] = compute()
        return self._memo[key]

    @cached_property
    def logits(self) -> np.ndarray:
        """z = h @ W.T (+ b) in float64 (N × V)."""
        z = self.hidden @ self.weight.T
        return z if self.bias is None else z + self.bias

    @property
    def num_classes(self) -> int:
        return self.weight.shape[0]

    @cached_property
    def logits_problem(self) -> Problem:
        """The softmax cross-entropy of the float64 logits, with the same labels and options."""
        return Problem(self.logits, self.labels, None, self.options)


@dataclass(frozen=True)
class LinearResult:
    """Loss (float, or (N,) for reduction none), dL/dh, dL/dW, dL/db and the softmax reference of the logits."""

    loss: float | np.ndarray
    grad_hidden: np.ndarray
    grad_weight: np.ndarray
    grad_bias: np.ndarray | None
    logits: Result = field(repr=False)
    wrt: str = "hidden"

    @property
    def grad(self) -> np.ndarray:
        """The gradient its problem's cells judge (`LinearProblem.wrt`)."""
        return self.grad_weight if self.wrt == "weight" else self.grad_hidden


WRT = ("hidden", "weight")


def make_linear_problem(hidden, weight, labels, bias=None, options: Options = Options(),
                        wrt: str = "hidden") -> LinearProblem:
    """A validated LinearProblem from array-likes (ValueError naming what is wrong)."""
    problem = LinearProblem(np.asarray(hidden, dtype=np.float64), np.asarray(weight, dtype=np.float64),
                            np.asarray(labels), None if bias is None else np.asarray(bias, dtype=np.float64), options,
                            wrt)
    validate_linear(problem)
    return problem


def validate_linear(problem: LinearProblem) -> None:
    """Raise ValueError naming the first thing wrong: the shapes of h, W, b, then the softmax problem's own checks."""
    hidden, weight, bias = problem.hidden, problem.weight, problem.bias
    if hidden.ndim != 2 or weight.ndim != 2:
        raise ValueError(f"hidden (N, D) and weight (V, D) must be 2-D, got {hidden.shape} and {weight.shape}")
    if hidden.shape[1] != weight.shape[1]:
        raise ValueError(f"hidden {hidden.shape} and weight {weight.shape} differ in D (their last dimension)")
    if problem.wrt not in WRT:
        raise ValueError(f"wrt {problem.wrt!r} is not one of {', '.join(WRT)}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias of shape {bias.shape}, expected ({weight.shape[0]},)")
    if not (np.all(np.isfinite(hidden)) and np.all(np.isfinite(weight))):
        raise ValueError("hidden and weight must be finite")
    validate(problem.logits_problem)


def solve_linear(problem: LinearProblem) -> LinearResult:
    """Loss and the three gradients of an already validated problem (G from the softmax reference, then the two
    products in float64)."""
    reference = solve(problem.logits_problem)
    grad = reference.grad
    grad_bias = None if problem.bias is None else np.sum(grad, axis=0)
    return LinearResult(reference.loss, grad @ problem.weight, grad.T @ problem.hidden, grad_bias, reference,
                        problem.wrt)


def linear_cross_entropy(hidden, weight, labels, bias=None, options: Options = Options()) -> LinearResult:
    """The reference of `hidden`, `weight`, `labels` (and `bias`); ValueError on invalid input."""
    return solve_linear(make_linear_problem(hidden, weight, labels, bias, options))
