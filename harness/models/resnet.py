"""CIFAR ResNet of depth 6n+2 (He et al. 2016, §4.2) with the option-A shortcut.

Option A: when a block halves the resolution and doubles the channels, the shortcut takes every
other pixel and zero-pads the new channels, so it adds no parameters. With BN, ResNet-110 has
1,727,962 parameters. Convs have no bias (BN's β, or nothing, plays that role). Layers are
numbered from the input as in bjorck2018: layer 1 is the stem conv, layers 2..6n+1 the block convs
in order, layer 6n+2 the fc layer, so ``model.layer(54)`` is the paper's layer 54.

``norm_where="top"`` is bjorck2018's "BN on top" (§3.1, App. G): a single normalization layer
after the output of the last residual block, right before average pooling; every other norm slot
is an identity. ``norm_where="all"`` (default) puts the norm after every conv.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from harness.models.init import init_weights
from harness.models.numbered import NumberedLayers
from harness.norms import NormFactory, make_norm, resolve_norm

NORM_WHERE = ("all", "top")


class ShortcutA(nn.Module):
    """Strided identity with zero-padded channels (no parameters)."""

    def __init__(self, in_planes: int, planes: int, stride: int):
        super().__init__()
        self.stride, self.pad = stride, planes - in_planes

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x[:, :, :: self.stride, :: self.stride]
        return F.pad(x, (0, 0, 0, 0, self.pad // 2, self.pad - self.pad // 2))


class BasicBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int, norm: NormFactory):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes)
        self.shortcut = ShortcutA(in_planes, planes, stride) if stride != 1 or in_planes != planes else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(NumberedLayers, nn.Module):
    def __init__(self, depth: int, norm: NormFactory, width: int = 16, num_classes: int = 10, in_channels: int = 3,
                 norm_where: str = "all"):
        super().__init__()
        if norm_where not in NORM_WHERE:
            raise ValueError(f"norm_where must be one of {', '.join(NORM_WHERE)}, got '{norm_where}'")
        top, norm = norm, (norm if norm_where == "all" else make_norm("none"))
        if depth < 8 or (depth - 2) % 6:
            raise ValueError(f"CIFAR ResNet depth must be 6n+2 with n ≥ 1 (20, 32, 56, 110, …), got {depth}")
        if width < 4 or width % 4:
            raise ValueError(f"width must be a positive multiple of 4 (option-A padding), got {width}")
        n = (depth - 2) // 6
        self.depth = depth
        self.conv1 = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        self.bn1 = norm(width)
        blocks, in_planes = [], width
        for stage, planes in enumerate((width, 2 * width, 4 * width)):
            for i in range(n):
                stride = 2 if stage > 0 and i == 0 else 1
                blocks.append(BasicBlock(in_planes, planes, stride, norm))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.top_norm = top(in_planes) if norm_where == "top" else nn.Identity()
        self.fc = nn.Linear(in_planes, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(F.relu(self.bn1(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(F.adaptive_avg_pool2d(self.top_norm(self.features(x)), 1).flatten(1))


def resnet_cifar(
    depth: int = 110,
    norm: NormFactory | str = "batch",
    width: int = 16,
    num_classes: int = 10,
    init: str = "xavier_uniform",
    norm_where: str = "all",
) -> CifarResNet:
    norm = resolve_norm(norm)
    return init_weights(CifarResNet(depth, norm, width, num_classes, norm_where=norm_where), init)
