"""Weight initialization shared by all builders.

bjorck2018 App. B and santurkar2018 App. A both use Xavier (Glorot) initialization; we use
Glorot's uniform variant (variance 2 / (fan_in + fan_out)). Conv and linear weights are
initialized by type, normalization layers by their parameters (weight → 1, bias → 0) whatever
their class, so custom norms are not silently skipped.
"""

from __future__ import annotations

from torch import nn

INITS = ("xavier_uniform", "xavier_normal", "kaiming_normal")


def init_weights(model: nn.Module, scheme: str = "xavier_uniform") -> nn.Module:
    if scheme not in INITS:
        raise ValueError(f"unknown init '{scheme}' (known: {', '.join(INITS)})")
    for module in model.modules():
        if isinstance(module, (nn.Conv2d, nn.Linear)):
            if scheme == "xavier_uniform":
                nn.init.xavier_uniform_(module.weight)
            elif scheme == "xavier_normal":
                nn.init.xavier_normal_(module.weight)
            else:
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif getattr(module, "weight", None) is not None and getattr(module, "bias", None) is not None:
            # affine parameters of a normalization layer
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)
    return model
