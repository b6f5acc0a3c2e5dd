"""Evaluate a model's loss and gradient at arbitrary parameters without touching its state.

Probes (ICS, landscape lines) evaluate the network at parameters other than the current ones.
They must not change the training state: the module's parameters stay as they are, normalization
running statistics are cloned for every evaluation (train-mode BN would otherwise update them),
and nothing here draws from the global random number generator. Every evaluation runs in full
float32 (``harness.accel.float32_probe``: TF32 and autocast off), whatever the caller's settings.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn
from torch.func import functional_call

from harness.accel import float32_probe

Params = dict[str, torch.Tensor]


class ParamLoss:
    """loss(params) and loss_and_grad(params) for a fixed batch, in the model's current mode."""

    def __init__(self, model: nn.Module, inputs: torch.Tensor, targets: torch.Tensor,
                 loss_fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]):
        self.model, self.inputs, self.targets, self.loss_fn = model, inputs, targets, loss_fn

    def params(self) -> Params:
        """A detached copy of the current parameters."""
        return {k: v.detach().clone() for k, v in self.model.named_parameters()}

    def _call(self, params: Params) -> torch.Tensor:
        buffers = {k: v.clone() for k, v in self.model.named_buffers()}
        return self.loss_fn(functional_call(self.model, {**params, **buffers}, (self.inputs,)), self.targets)

    def loss(self, params: Params) -> float:
        with torch.no_grad(), float32_probe():
            return float(self._call(params))

    def loss_and_grad(self, params: Params) -> tuple[float, Params]:
        leaves = {k: v.detach().requires_grad_(True) for k, v in params.items()}
        with float32_probe():
            value = self._call(leaves)
            grads = torch.autograd.grad(value, list(leaves.values()))
        return float(value.detach()), dict(zip(leaves, grads))


def flat(tensors: Params, names: list[str] | None = None) -> torch.Tensor:
    return torch.cat([tensors[n].reshape(-1) for n in (names or list(tensors))])
