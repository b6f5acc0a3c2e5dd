"""Deep fully connected ReLU network without skip connections: [linear → norm → ReLU] × depth,
then a linear classifier (X-NOSKIP-EXPLODE, after Yang et al., ICLR 2019).

Layers are numbered from the input (``model.layer(1)`` is the first hidden layer, ``depth + 1``
the classifier). Hidden layers have no bias when normalized (BN's β plays that role).
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.init import init_weights
from harness.models.numbered import NumberedLayers
from harness.norms import NormFactory, resolve_norm


class MLP(NumberedLayers, nn.Module):
    def __init__(self, depth: int, width: int, in_features: int, num_classes: int, norm: NormFactory):
        super().__init__()
        if depth < 1 or width < 1 or in_features < 1 or num_classes < 1:
            raise ValueError(f"depth, width, in_features and num_classes must be positive; got {depth}, {width}, {in_features}, {num_classes}")
        layers: list[nn.Module] = []
        for i in range(depth):
            layers += [nn.Linear(in_features if i == 0 else width, width, bias=not norm.normalizes),
                       norm(width, dims=1), nn.ReLU()]
        self.hidden = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.hidden(x.flatten(1)))


def mlp(depth: int, width: int = 256, in_features: int = 3 * 32 * 32, num_classes: int = 10,
        norm: NormFactory | str = "batch", init: str = "xavier_uniform") -> MLP:
    return init_weights(MLP(depth, width, in_features, num_classes, resolve_norm(norm)), init)
