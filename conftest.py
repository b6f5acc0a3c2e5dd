"""Root conftest: the claims plugin and the fixture modules every claim test can use."""

import os

# Share the cores between pytest-xdist workers before numpy loads its BLAS: two workers with two
# spinning OpenBLAS threads each on a 2-core machine run several times slower than one.
if "PYTEST_XDIST_WORKER_COUNT" in os.environ and "BNCLAIMS_THREADS" not in os.environ:
    _threads = str(max(1, (os.cpu_count() or 1) // int(os.environ["PYTEST_XDIST_WORKER_COUNT"])))
    for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_var, _threads)

# One GPU per xdist worker: CUDA_VISIBLE_DEVICES must be set before anything initializes CUDA
# (harness/device.py: the GPU pool, round robin, BNCLAIMS_GPUS, BNCLAIMS_GPU_PER_WORKER=0 to opt out).
from harness.device import assign_worker_gpu  # noqa: E402

assign_worker_gpu()

pytest_plugins = [
    "harness.pytest_plugin", "fixtures.common", "fixtures.rmt", "fixtures.dln", "fixtures.init", "fixtures.training",
    "fixtures.vgg",
]
