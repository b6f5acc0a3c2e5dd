"""Internal covariate shift as santurkar2018 Definition 2.1.

For layer i at step t: G = ∇_{W_i} L at the current parameters; G′ = the same gradient after every
earlier layer 1..i−1 has taken its gradient-descent update (W ← W − η ∇L, all of that layer's
parameters, including its normalization's γ and β) while layer i and the later ones have not. The
measure is ‖G − G′‖₂ and cos(G, G′) (cos ≈ 1: no shift).
"""

from __future__ import annotations

import dataclasses

import torch

from harness.probes.functional import ParamLoss, Params, flat


@dataclasses.dataclass(frozen=True)
class LayerICS:
    layer: int  # 1-based, as in the paper
    l2: float  # ‖G − G′‖₂
    cos: float  # cos(G, G′)
    grad_norm: float  # ‖G‖₂


def internal_covariate_shift(objective: ParamLoss, layers: list[list[str]], weights: list[str], lr: float,
                             probe: list[int] | None = None, params: Params | None = None,
                             base: tuple[float, Params] | None = None) -> list[LayerICS]:
    """ICS of each probed layer.

    ``layers[k]`` names every parameter of layer k+1 (weight and its norm's affine parameters);
    ``weights[k]`` names its weight W_{k+1}, the parameter G and G′ are taken of. ``probe`` lists
    1-based layer numbers (default: all). ``base`` is ``objective.loss_and_grad(params)`` when the
    caller already has it.
    """
    if len(layers) != len(weights):
        raise ValueError(f"{len(layers)} layers but {len(weights)} weight names")
    params = params or objective.params()
    _, grads = base or objective.loss_and_grad(params)
    out = []
    for number in probe or range(1, len(layers) + 1):
        if not 1 <= number <= len(layers):
            raise ValueError(f"layer {number} is not among layers 1..{len(layers)}")
        shifted = dict(params)
        for earlier in layers[: number - 1]:
            for name in earlier:
                shifted[name] = params[name] - lr * grads[name]
        _, grads_after = objective.loss_and_grad(shifted)
        G, G2 = flat(grads, [weights[number - 1]]), flat(grads_after, [weights[number - 1]])
        cos = torch.nn.functional.cosine_similarity(G, G2, dim=0)
        out.append(LayerICS(number, float((G - G2).norm()), float(cos), float(G.norm())))
    return out
