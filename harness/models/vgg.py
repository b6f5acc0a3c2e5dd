"""CIFAR VGG: 3×3 convs (each followed by norm and ReLU) with max-pooling, then one linear layer.

The configurations are Simonyan & Zisserman's; on 32×32 inputs five poolings leave 1×1×512, so
the classifier is a single 512→10 layer, as in common CIFAR ports. ``width`` scales all channel
counts (fast profiles use narrow nets). Convs carry a bias only without normalization.
"""

from __future__ import annotations

import torch
from torch import nn

from harness.models.init import init_weights
from harness.models.numbered import NumberedLayers
from harness.norms import NormFactory, resolve_norm

CONFIGS = {
    "vgg11": [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg13": [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    "vgg16": [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    "vgg19": [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"],
}


class CifarVGG(NumberedLayers, nn.Module):
    def __init__(self, config: str, norm: NormFactory, width: float = 1.0, num_classes: int = 10, in_channels: int = 3):
        super().__init__()
        if config not in CONFIGS:
            raise ValueError(f"unknown VGG config '{config}' (known: {', '.join(CONFIGS)})")
        if width <= 0:
            raise ValueError(f"width must be positive, got {width}")
        layers: list[nn.Module] = []
        channels = in_channels
        for spec in CONFIGS[config]:
            if spec == "M":
                layers.append(nn.MaxPool2d(2))
                continue
            out = max(1, round(spec * width))
            layers += [nn.Conv2d(channels, out, 3, padding=1, bias=not norm.normalizes), norm(out), nn.ReLU(inplace=True)]
            channels = out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(channels, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


def vgg_cifar(
    config: str = "vgg11",
    norm: NormFactory | str = "batch",
    width: float = 1.0,
    num_classes: int = 10,
    init: str = "xavier_uniform",
) -> CifarVGG:
    norm = resolve_norm(norm)
    return init_weights(CifarVGG(config, norm, width, num_classes), init)
