"""Loss landscape along a direction (santurkar2018 §3.2, App. A.2.2).

At parameters θ with gradient g, move to θ − η·d for each step η of a range (d = g for the
gradient direction, or a random direction of the same norm) and record the loss and gradient
there. Reported per line:
- loss range: max − min of the loss over the steps (the shaded band of Figs. 4a / 9a);
- gradient change: max over η of ‖∇L(θ) − ∇L(θ − η d)‖ (gradient predictiveness, Figs. 4b / 9b);
- effective β: max over η of ‖∇L(θ) − ∇L(θ − η d)‖ / ‖η d‖ (Figs. 4c / 9c).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import torch

from harness.probes.functional import ParamLoss, Params, flat


@dataclasses.dataclass(frozen=True)
class LandscapeLine:
    steps: list[float]
    losses: list[float]
    grad_changes: list[float]
    loss_range: float
    grad_change: float
    beta: float


def random_direction_like(grads: Params, generator: torch.Generator) -> Params:
    """A Gaussian direction scaled to the gradient's norm, drawn from ``generator`` (never the global RNG)."""
    noise = {k: torch.randn(v.shape, generator=generator, dtype=v.dtype, device=v.device) for k, v in grads.items()}
    scale = flat(grads).norm() / flat(noise).norm()
    return {k: v * scale for k, v in noise.items()}


def landscape_line(objective: ParamLoss, steps: Sequence[float], direction: str = "gradient",
                   generator: torch.Generator | None = None, params: Params | None = None,
                   base: tuple[float, Params] | None = None) -> LandscapeLine:
    """The line from ``params`` (default: the model's); ``base`` is their (loss, gradient) if known."""
    if direction not in ("gradient", "random"):
        raise ValueError(f"direction must be 'gradient' or 'random', got '{direction}'")
    if not steps or min(steps) <= 0:
        raise ValueError("steps must be a non-empty list of positive step sizes")
    params = params or objective.params()
    _, grad0 = base or objective.loss_and_grad(params)
    if direction == "gradient":
        d = grad0
    else:
        if generator is None:
            raise ValueError("a random direction needs a torch.Generator")
        d = random_direction_like(grad0, generator)
    g0, dnorm = flat(grad0), float(flat(d).norm())
    losses, changes, betas = [], [], []
    for eta in steps:
        loss, grad = objective.loss_and_grad({k: params[k] - eta * d[k] for k in params})
        change = float((flat(grad) - g0).norm())
        losses.append(loss)
        changes.append(change)
        betas.append(change / (eta * dnorm) if dnorm > 0 else float("nan"))
    return LandscapeLine(list(steps), losses, changes, max(losses) - min(losses), max(changes), max(betas))
