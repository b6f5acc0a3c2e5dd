"""Speed levers for training-only runs, and the float32 guard every gradient measurement runs under.

Measurement honesty: gradient measurements are float32 with TF32 off; reduced precision only where a
claim is about speed or training accuracy, and only where it changes no verdict. So the levers
below are options of :func:`harness.train.train` (``accel=Accel(...)``), all off by default, and a
``train`` call without ``accel`` runs exactly the code it ran before they existed.

Levers (each can be switched on alone, so its gain is measured alone):

- ``cudnn_benchmark``: cuDNN times its convolution algorithms on the first batch of each shape and
  keeps the fastest. CUDA only; on the CPU the flag has no effect (bit-identical results).
- ``channels_last``: the model's 4-d weights and each input batch in NHWC memory layout (tensor
  cores prefer it). Works on the CPU too (oneDNN); same values up to float rounding. The model is
  put back into the default layout when ``train`` returns.
- ``tf32``: TF32 for float32 matmuls and cuDNN convolutions (10-bit mantissa products). CUDA
  Ampere+ only; no effect on the CPU.
- ``autocast_bf16``: forward pass and loss under ``torch.autocast(dtype=bfloat16)`` (weights,
  gradients and optimizer state stay float32; bf16 needs no loss scaling). Works on the CPU too,
  where it is usually *slower* (no bf16 matrix units on most CPUs); results differ at bf16 rounding.
- ``compile``: the training forward goes through ``torch.compile`` (``True`` = default mode, or a
  mode name such as ``"reduce-overhead"``, which uses CUDA graphs, or ``"max-autotune"``);
  ``compile_backend`` picks the backend (``"inductor"``; ``"eager"`` only exercises the graph
  capture and is what the CPU unit tests use). Evaluation stays eager.

While ``train`` runs with an ``Accel``, the TF32 and cudnn.benchmark flags are set to the
``Accel``'s values (so ``Accel()`` means TF32 *off*, whatever the process default) and restored
afterwards. A run that carries probes (``train(..., probes=...)``) refuses levers altogether.

Probes: :func:`float32_probe` is the context every gradient measurement runs in (TF32 off for
matmuls and cuDNN, autocast off on CPU and CUDA), and :func:`check_float32` raises
:class:`PrecisionError` when called where that does not hold.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator

import torch
from torch import nn

LEVERS = ("cudnn_benchmark", "channels_last", "tf32", "autocast_bf16", "compile")
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")


class PrecisionError(RuntimeError):
    """A gradient measurement was asked to run with reduced precision (TF32 or autocast)."""


@dataclasses.dataclass(frozen=True)
class Accel:
    cudnn_benchmark: bool = False
    channels_last: bool = False
    tf32: bool = False
    autocast_bf16: bool = False
    compile: bool | str = False  # False, True (= "default") or a torch.compile mode
    compile_backend: str = "inductor"

    def __post_init__(self):
        for name in ("cudnn_benchmark", "channels_last", "tf32", "autocast_bf16"):
            if not isinstance(getattr(self, name), bool):
                raise TypeError(f"Accel.{name} must be a bool, got {getattr(self, name)!r}")
        if not (isinstance(self.compile, bool) or self.compile in COMPILE_MODES):
            raise ValueError(f"Accel.compile must be a bool or one of {COMPILE_MODES}, got {self.compile!r}")
        if not isinstance(self.compile_backend, str) or not self.compile_backend:
            raise ValueError(f"Accel.compile_backend must name a torch.compile backend, got {self.compile_backend!r}")

    @property
    def any(self) -> bool:
        """Whether any lever is on."""
        return any(bool(getattr(self, name)) for name in LEVERS)

    @classmethod
    def only(cls, lever: str, **extra) -> Accel:
        """One lever on, the others off: ``Accel.only("tf32")``."""
        if lever not in LEVERS:
            raise ValueError(f"unknown lever {lever!r}; levers: {', '.join(LEVERS)}")
        return cls(**{lever: True}, **extra)

    def describe(self) -> str:
        on = [name if getattr(self, name) is True else f"{name}={getattr(self, name)}" for name in LEVERS if getattr(self, name)]
        return "+".join(on) if on else "none"


@contextlib.contextmanager
def backend_flags(*, tf32: bool, cudnn_benchmark: bool) -> Iterator[None]:
    """Set the TF32 and cudnn.benchmark flags for the duration, then restore them."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = tf32
    torch.backends.cudnn.benchmark = cudnn_benchmark
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32, torch.backends.cudnn.benchmark = saved


class TrainingStep:
    """What ``train`` calls for each batch: ``prepare(x)`` sets the input layout, ``forward(x)``
    gives the logits (the model itself, or its compiled form), ``autocast()`` wraps forward + loss.
    With every lever off these are the identity, the model and a null context."""

    def __init__(self, model: nn.Module, accel: Accel, device: torch.device):
        self.model, self.accel, self.device = model, accel, device
        if accel.channels_last:
            model.to(memory_format=torch.channels_last)
        if accel.compile:
            mode = None if accel.compile is True else accel.compile
            self.forward = torch.compile(model, mode=mode, backend=accel.compile_backend)
        else:
            self.forward = model

    def prepare(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.accel.channels_last else x

    def autocast(self):
        if self.accel.autocast_bf16:
            return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()


@contextlib.contextmanager
def float32_probe() -> Iterator[None]:
    """Full float32 for a gradient measurement: TF32 off for matmuls and cuDNN convolutions, autocast
    off (CPU and CUDA), for the duration; the previous settings come back afterwards.

    PyTorch's own default lets cuDNN convolutions use TF32 on Ampere and newer GPUs, so probes must
    switch it off explicitly rather than trust the process state.
    """
    saved = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        with torch.autocast("cpu", enabled=False), torch.autocast("cuda", enabled=False):
            check_float32("float32_probe")
            yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def check_float32(where: str) -> None:
    """Raise :class:`PrecisionError` unless matmuls and convolutions run in full float32 here."""
    problems = []
    if torch.backends.cuda.matmul.allow_tf32:
        problems.append("torch.backends.cuda.matmul.allow_tf32 is on")
    if torch.backends.cudnn.allow_tf32:
        problems.append("torch.backends.cudnn.allow_tf32 is on")
    for device_type in ("cpu", "cuda"):
        if torch.is_autocast_enabled(device_type):
            problems.append(f"autocast is enabled for {device_type}")
    if problems:
        raise PrecisionError(f"{where}: gradient measurements run in float32 with TF32 off, but {'; '.join(problems)} "
                             "(run it inside harness.accel.float32_probe())")
