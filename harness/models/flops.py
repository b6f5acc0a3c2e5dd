"""FLOP estimates of the suite's models and runs, and the sustained training rate of a device
(what ``pytest --plan`` prices runs with)."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Mapping
from typing import Any

import torch


@functools.lru_cache(maxsize=256)
def _forward_flops(builder: str, kwargs_json: str, input_shape: tuple[int, ...]) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    from harness import models

    model = getattr(models, builder)(**json.loads(kwargs_json)).eval()
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        model(torch.zeros(input_shape))
    return float(counter.get_total_flops())


def forward_flops(builder: str, kwargs: Mapping[str, Any], input_shape: tuple[int, ...]) -> float:
    """FLOPs of one forward pass of ``harness.models.<builder>(**kwargs)`` on one input of
    ``input_shape`` (batch dimension included, usually 1)."""
    return _forward_flops(builder, json.dumps(dict(kwargs), sort_keys=True), tuple(input_shape))


def training_flops(per_example: float, batch: int, steps: int, evaluated: int = 0) -> float:
    """A run's FLOPs: ``steps`` training steps (forward + backward ≈ 3 forwards) on ``batch``
    examples, plus ``evaluated`` examples scored by a forward pass."""
    return per_example * (3 * batch * steps + evaluated)


def calibrate(device: torch.device | str = "cpu", steps: int = 3) -> float:
    """Sustained training FLOP/s on ``device``: a ResNet-20 (width 16, batch 64, 32×32) trained for
    ``steps`` steps after one warm-up step, timed."""
    from harness.models import resnet_cifar

    device = torch.device(device)
    torch.manual_seed(0)
    model = resnet_cifar(depth=20, width=16).to(device).train()
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(64, 3, 32, 32, device=device), torch.randint(0, 10, (64,), device=device)

    def step():
        opt.zero_grad(set_to_none=True)
        torch.nn.functional.cross_entropy(model(x), y).backward()
        opt.step()

    step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    seconds = time.perf_counter() - start
    return training_flops(forward_flops("resnet_cifar", {"depth": 20, "width": 16}, (1, 3, 32, 32)), 64, steps) / seconds
