"""Device and thread selection, one GPU per pytest-xdist worker, and a one-line description of
where a measurement ran."""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, MutableMapping, Sequence

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


THREADS_ENV = "BNCLAIMS_THREADS"


def compute_threads() -> int:
    """Threads one computation uses: ``BNCLAIMS_THREADS``, default 1.

    One, whatever the machine: CPU float reductions (BN's kernel among them) round differently on
    one and on two threads, and at fast some verdicts sit inside that noise (B-GEN-GAP held with
    two threads and was refuted with one). With one thread per process a serial run, a run with
    ``-n 2`` and a run on another machine compute the same bits; the cores are used by running
    processes side by side (pytest-xdist workers, ``harness.concurrent.parallel_map``), which on
    this project's small nets also does more work per second than threads (ResNet-56 w8 steps:
    1.57×, DLN runs: 2×, measured on 2 cores)."""
    value = os.environ.get(THREADS_ENV, "1")
    if not (value.isascii() and value.isdigit()) or int(value) < 1:
        raise ValueError(f"{THREADS_ENV} must be a positive integer, got {value!r}")
    return int(value)


def configure_threads() -> int:
    """Set this process's torch threads to ``compute_threads()``, flush denormal floats to zero,
    and compute in full float32 (no TF32, see ``full_float32``). The pytest plugin calls it at
    start, in every xdist worker too."""
    threads = compute_threads()
    torch.set_num_threads(threads)
    # Unnormalized deep nets produce denormal floats (far below 1e-38) in their gradients; CPU
    # arithmetic on them is many times slower and they are numerically nil. Measured: an
    # unnormalized ResNet-110 step took 2.2× as long without flushing them to zero.
    torch.set_flush_denormal(True)
    full_float32()
    return threads


def cpu_share() -> int:
    """The cores this process may fill with worker processes: the cores divided among the
    pytest-xdist workers (≥ 1)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    return max(1, (os.cpu_count() or 1) // workers)


def full_float32() -> None:
    """Every computation in full float32 unless a training-only run opts in to TF32
    (``harness.accel.Accel(tf32=True)``). PyTorch lets cuDNN convolutions use TF32 by default on
    Ampere and newer GPUs, which would put 10-bit-mantissa products into every GPU training step,
    the diverging updates and gradient lines the claims measure included."""
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False


def describe(device: torch.device | None = None) -> str:
    device = device or select_device()
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    threads = torch.get_num_threads()
    return f"cpu ({threads} thread{'' if threads == 1 else 's'})"


# One GPU per pytest-xdist worker -----------------------------------------------------------
#
# Each worker process sets CUDA_VISIBLE_DEVICES to one GPU of a pool before anything initializes
# CUDA (the root conftest calls assign_worker_gpu() at import; CUDA reads the variable once, at
# initialization). Worker gwK gets pool[K % len(pool)]: round robin when there are more workers than
# GPUs. The pool, first match wins:
#   1. BNCLAIMS_GPUS: a count ("4" = physical GPUs 0-3) or a comma-separated list of GPU indices or
#      GPU-/MIG- UUIDs ("0,2", "MIG-...");
#   2. CUDA_VISIBLE_DEVICES as the user set it for the run: the workers split those GPUs and never
#      use others ("" or "-1": no GPU, left alone);
#   3. ``nvidia-smi -L`` (does not initialize CUDA in this process): every GPU, or its MIG devices
#      when it is partitioned. No nvidia-smi or no GPU: the environment is left alone (CPU run).
# Physical indices are made to mean nvidia-smi's order (CUDA_DEVICE_ORDER=PCI_BUS_ID unless set).
# BNCLAIMS_GPU_PER_WORKER=0 switches the mapping off; outside xdist nothing is changed.

GPUS_ENV = "BNCLAIMS_GPUS"
MAPPING_SWITCH_ENV = "BNCLAIMS_GPU_PER_WORKER"
_WORKER_ID = re.compile(r"gw(\d+)")
_GPU_ID = re.compile(r"[0-9]+|(?:GPU|MIG)-[0-9A-Za-z/-]+")
_SMI_GPU = re.compile(r"^GPU (\d+): .*\(UUID: (GPU-[^)]+)\)")
_SMI_MIG = re.compile(r"^\s+MIG .*\(UUID: (MIG-[^)]+)\)")


def worker_index(worker_id: str) -> int:
    """0-based index of a pytest-xdist worker id ("gw3" → 3)."""
    match = _WORKER_ID.fullmatch(worker_id.strip()) if isinstance(worker_id, str) else None
    if match is None:
        raise ValueError(f"malformed pytest-xdist worker id {worker_id!r}: expected 'gw' followed by a number, e.g. 'gw0'")
    return int(match.group(1))


def gpu_for_worker(worker_id: str, gpus: Sequence[str]) -> str:
    """The CUDA_VISIBLE_DEVICES value of worker ``worker_id``: ``gpus`` shared round robin."""
    if not gpus:
        raise ValueError(f"no GPU to give worker {worker_id!r}: the GPU list is empty")
    return gpus[worker_index(worker_id) % len(gpus)]


def parse_gpu_list(text: str, source: str) -> list[str]:
    """A count ("4" → 0..3) or a comma-separated list of GPU indices / UUIDs; "" and "-1" are no GPU."""
    text = text.strip()
    if text in ("", "-1"):
        return []
    entries = [e.strip() for e in text.split(",")]
    if source == GPUS_ENV and len(entries) == 1 and entries[0].isascii() and entries[0].isdigit():
        return [str(i) for i in range(int(entries[0]))]
    bad = [e for e in entries if not _GPU_ID.fullmatch(e)]
    if bad or len(set(entries)) != len(entries):
        raise ValueError(f"{source}={text!r}: expected {'a GPU count or ' if source == GPUS_ENV else ''}"
                         f"distinct comma-separated GPU indices or GPU-/MIG- UUIDs; bad or repeated: {bad or entries}")
    return entries


def parse_nvidia_smi(text: str) -> list[str]:
    """GPU indices from ``nvidia-smi -L``; a GPU partitioned by MIG contributes its MIG UUIDs instead."""
    gpus: list[tuple[str, list[str]]] = []
    for line in text.splitlines():
        if m := _SMI_GPU.match(line):
            gpus.append((m.group(1), []))
        elif (m := _SMI_MIG.match(line)) and gpus:
            gpus[-1][1].append(m.group(1))
    return [g for index, migs in gpus for g in (migs or [index])]


def _nvidia_smi() -> str:
    try:
        done = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout if done.returncode == 0 else ""


def discover_gpus(environ: MutableMapping[str, str], nvidia_smi: Callable[[], str] = _nvidia_smi) -> tuple[list[str], str]:
    """The GPU pool and where it came from (see the comment above)."""
    for source in (GPUS_ENV, "CUDA_VISIBLE_DEVICES"):
        if source in environ:
            return parse_gpu_list(environ[source], source), source
    return parse_nvidia_smi(nvidia_smi()), "nvidia-smi -L"


def assign_worker_gpu(environ: MutableMapping[str, str] | None = None, nvidia_smi: Callable[[], str] = _nvidia_smi) -> str | None:
    """Give this pytest-xdist worker its GPU by setting CUDA_VISIBLE_DEVICES; returns the value set,
    or None when the environment was left alone (not a worker, mapping off, no GPU)."""
    environ = os.environ if environ is None else environ
    worker = environ.get("PYTEST_XDIST_WORKER")
    if worker is None or environ.get(MAPPING_SWITCH_ENV, "1").strip().lower() in ("0", "off", "false", "no"):
        return None
    worker_index(worker)  # a malformed id fails even on a machine without GPUs
    gpus, source = discover_gpus(environ, nvidia_smi)
    if not gpus:
        return None
    if torch.cuda.is_initialized():
        raise RuntimeError(f"CUDA was initialized before worker {worker} got its GPU; "
                           "assign_worker_gpu() must run before anything touches CUDA")
    gpu = gpu_for_worker(worker, gpus)
    environ["CUDA_VISIBLE_DEVICES"] = gpu
    if gpu.isdigit() and source != "CUDA_VISIBLE_DEVICES":
        environ.setdefault("CUDA_DEVICE_ORDER", "PCI_BUS_ID")  # physical indices in nvidia-smi's order
    return gpu
