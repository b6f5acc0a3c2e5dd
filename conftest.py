"""Root conftest: the claims plugin and the fixture modules every claim test can use."""

import os

# BLAS and OpenMP pools get the same thread count as torch (BNCLAIMS_THREADS, default 1; see
# harness.device.compute_threads), set before numpy loads its BLAS: results must not depend on the
# machine's cores, and two workers with two spinning OpenBLAS threads each on a 2-core machine run
# several times slower than one.
_threads = os.environ.get("BNCLAIMS_THREADS", "1")
if _threads.isascii() and _threads.isdigit() and int(_threads) > 0:  # a bad value is reported by the claims plugin, in one line
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

# One GPU per xdist worker: CUDA_VISIBLE_DEVICES must be set before anything initializes CUDA
# (harness/device.py: the GPU pool, round robin, BNCLAIMS_GPUS, BNCLAIMS_GPU_PER_WORKER=0 to opt out).
from harness.device import assign_worker_gpu  # noqa: E402

assign_worker_gpu()

pytest_plugins = [
    "harness.claimkit.plugin", "harness.bn_plugin", "fixtures.common", "fixtures.rmt", "fixtures.dln", "fixtures.init", "fixtures.training",
    "fixtures.vgg",
]


def pytest_addoption(parser):
    """The throughput benchmarks' sizes (tests/benchmarks): ``--bench depth=110 --bench levers=tf32,all``."""
    parser.getgroup("bnclaims", "claims suite").addoption(
        "--bench", action="append", default=[], metavar="KEY=VALUE",
        help="a throughput benchmark setting (pytest tests/benchmarks -m benchmark), repeatable: device, depth, width, "
             "resolution, batch, steps, rounds, warmup_rounds, loader_workers, n_train, levers, small_depth, small_width, "
             "small_resolution, small_steps, lrs, seeds, concurrency (defaults per device: docs/performance.md)")
