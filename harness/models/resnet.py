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
    def __init__(self, in_planes: int, planes: int, stride: int, norm: NormFactory, fixup: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn1 = norm(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = norm(planes)
        self.shortcut = ShortcutA(in_planes, planes, stride) if stride != 1 or in_planes != planes else nn.Identity()
        self.fixup = fixup
        if fixup:  # Fixup's scalar biases before each conv and activation, and the branch multiplier
            self.bias1a, self.bias1b, self.bias2a, self.bias2b = (nn.Parameter(torch.zeros(1)) for _ in range(4))
            self.scale = nn.Parameter(torch.ones(1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fixup:
            out = F.relu(self.conv1(x + self.bias1a) + self.bias1b)
            out = self.conv2(out + self.bias2a) * self.scale + self.bias2b
            return F.relu(out + self.shortcut(x + self.bias1a))
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(NumberedLayers, nn.Module):
    def __init__(self, depth: int, norm: NormFactory, width: int = 16, num_classes: int = 10, in_channels: int = 3,
                 norm_where: str = "all", fixup: bool = False):
        super().__init__()
        if norm_where not in NORM_WHERE:
            raise ValueError(f"norm_where must be one of {', '.join(NORM_WHERE)}, got '{norm_where}'")
        if fixup and norm.kind != "none":
            raise ValueError(f"Fixup is an initialization for unnormalized ResNets; got norm '{norm.kind}'")
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
                blocks.append(BasicBlock(in_planes, planes, stride, norm, fixup))
                in_planes = planes
        self.blocks = nn.Sequential(*blocks)
        self.top_norm = top(in_planes) if norm_where == "top" else nn.Identity()
        self.fc = nn.Linear(in_planes, num_classes)
        self.fixup = fixup
        if fixup:  # scalar biases after the stem and before the classifier
            self.bias1, self.bias2 = nn.Parameter(torch.zeros(1)), nn.Parameter(torch.zeros(1))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        stem = self.conv1(x) + self.bias1 if self.fixup else self.bn1(self.conv1(x))
        return self.blocks(F.relu(stem))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = F.adaptive_avg_pool2d(self.top_norm(self.features(x)), 1).flatten(1)
        return self.fc(pooled + self.bias2 if self.fixup else pooled)


def resnet_cifar(
    depth: int = 110,
    norm: NormFactory | str = "batch",
    width: int = 16,
    num_classes: int = 10,
    init: str = "xavier_uniform",
    norm_where: str = "all",
    fixup: bool = False,
) -> CifarResNet:
    """``fixup=True`` (unnormalized only) adds Fixup's scalar biases and multipliers and its
    initialization (Zhang, Dauphin & Ma 2019) on top of ``init``."""
    norm = resolve_norm(norm)
    model = init_weights(CifarResNet(depth, norm, width, num_classes, norm_where=norm_where, fixup=fixup), init)
    return fixup_init(model) if fixup else model


def fixup_init(model: CifarResNet) -> CifarResNet:
    """Fixup for basic blocks (m = 2 convs per branch, L branches): the first conv of each branch
    He-initialized and scaled by L^(-1/(2m-2)) = L^(-1/2), the last conv of each branch and the
    classifier zero, scalar biases 0 and multipliers 1 (already so at construction)."""
    branches = len(model.blocks)
    with torch.no_grad():
        for block in model.blocks:
            w = block.conv1.weight
            nn.init.normal_(w, 0.0, (2.0 / (w.shape[0] * w[0, 0].numel())) ** 0.5 * branches**-0.5)
            nn.init.zeros_(block.conv2.weight)
        nn.init.zeros_(model.fc.weight)
        nn.init.zeros_(model.fc.bias)
    return model
