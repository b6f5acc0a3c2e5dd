"""Device and thread selection, and a one-line description of where a measurement ran."""

from __future__ import annotations

import os

import torch


def select_device(preference: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cpu``/``cuda`` force one."""
    if preference == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if preference not in ("cpu", "cuda") and not preference.startswith("cuda:"):
        raise ValueError(f"unknown device '{preference}' (use auto, cpu or cuda[:N])")
    if preference.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"device '{preference}' requested but CUDA is not available")
    return torch.device(preference)


def configure_threads() -> int:
    """Share the CPU cores between xdist workers: cores // workers threads each (≥ 1), and flush
    denormal floats to zero.

    ``BNCLAIMS_THREADS`` overrides. The cores are shared with whatever else runs on the machine,
    so timings are compared as ratios within one run, never against absolute numbers.
    """
    if "BNCLAIMS_THREADS" in os.environ:
        threads = int(os.environ["BNCLAIMS_THREADS"])
    else:
        workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
        threads = max(1, (os.cpu_count() or 1) // workers)
    torch.set_num_threads(threads)
    # Unnormalized deep nets produce denormal floats (far below 1e-38) in their gradients; CPU
    # arithmetic on them is many times slower and they are numerically nil. Measured: an
    # unnormalized ResNet-110 step took 2.2× as long without flushing them to zero.
    torch.set_flush_denormal(True)
    return threads


def describe(device: torch.device | None = None) -> str:
    device = device or select_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"
