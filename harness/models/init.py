"""Weight initialization shared by all builders.

bjorck2018 App. B and santurkar2018 App. A both use Xavier (Glorot) initialization; we use
Glorot's uniform variant (variance 2 / (fan_in + fan_out)). Conv and linear weights are
initialized by type, normalization layers by their parameters (weight → 1, bias → 0) whatever
their class, so custom norms are not silently skipped.
"""

from __future__ import annotations

import torch
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


def equalize_output_bias(model: nn.Module, x: torch.Tensor) -> nn.Module:
    """Review 1's fix for bjorck2018 §3.2: re-set the final layer's biases so that, on the
    calibration batch ``x``, every class gets the same mean logit (zero). Only ``model.fc.bias``
    changes; nothing below it, so the growth of activations with depth is untouched.
    The batch is evaluated in the model's current mode; use one other than the probed batch."""
    fc = getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear) or fc.bias is None:
        raise ValueError("equalize_output_bias needs a model whose final layer `fc` is an nn.Linear with a bias")
    with torch.no_grad():
        mean_logit = model(x).mean(0)
        if not torch.isfinite(mean_logit).all():
            raise ValueError("the calibration batch gives non-finite logits; cannot equalize the output bias")
        fc.bias -= mean_logit
    return model
