"""Device selection and the one-GPU-per-xdist-worker mapping (runs on the CPU: GPUs are simulated)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import harness
from harness.device import (
    assign_worker_gpu,
    discover_gpus,
    gpu_for_worker,
    parse_gpu_list,
    parse_nvidia_smi,
    worker_index,
)

SMI = """GPU 0: NVIDIA H200 (UUID: GPU-11111111-2222-3333-4444-555555555555)
GPU 1: NVIDIA H200 (UUID: GPU-66666666-7777-8888-9999-000000000000)
"""
SMI_MIG = """GPU 0: NVIDIA H200 (UUID: GPU-11111111-2222-3333-4444-555555555555)
  MIG 3g.71gb     Device  0: (UUID: MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee)
  MIG 3g.71gb     Device  1: (UUID: MIG-ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee)
GPU 1: NVIDIA H200 (UUID: GPU-66666666-7777-8888-9999-000000000000)
"""


def no_smi():
    raise AssertionError("nvidia-smi must not be called here")


@pytest.mark.parametrize("worker, index", [("gw0", 0), ("gw3", 3), ("gw12", 12)])
def test_worker_index(worker, index):
    assert worker_index(worker) == index


@pytest.mark.parametrize("worker", ["master", "gw", "gw-1", "gwx", "3", "", "GW1", None])
def test_malformed_worker_id_is_a_clear_error(worker):
    with pytest.raises(ValueError, match="malformed pytest-xdist worker id"):
        worker_index(worker)


def test_round_robin_over_the_gpus():
    gpus = ["0", "1", "2"]
    assert [gpu_for_worker(f"gw{k}", gpus) for k in range(7)] == ["0", "1", "2", "0", "1", "2", "0"]
    assert [gpu_for_worker(f"gw{k}", ["5"]) for k in range(3)] == ["5", "5", "5"]
    with pytest.raises(ValueError, match="GPU list is empty"):
        gpu_for_worker("gw0", [])


@pytest.mark.parametrize("text, source, gpus", [
    ("4", "BNCLAIMS_GPUS", ["0", "1", "2", "3"]),
    ("0", "BNCLAIMS_GPUS", []),
    ("2,0", "BNCLAIMS_GPUS", ["2", "0"]),
    (" 1, 3 ", "CUDA_VISIBLE_DEVICES", ["1", "3"]),
    ("3", "CUDA_VISIBLE_DEVICES", ["3"]),  # CUDA_VISIBLE_DEVICES=3 is GPU 3, not a count
    ("", "CUDA_VISIBLE_DEVICES", []),
    ("-1", "CUDA_VISIBLE_DEVICES", []),
    ("MIG-aaaa-bbbb,GPU-1234", "BNCLAIMS_GPUS", ["MIG-aaaa-bbbb", "GPU-1234"]),
])
def test_parse_gpu_list(text, source, gpus):
    assert parse_gpu_list(text, source) == gpus


@pytest.mark.parametrize("text", ["two", "0,,1", "0;1", "1,1", "-2"])
def test_bad_gpu_list_names_the_variable(text):
    with pytest.raises(ValueError, match="BNCLAIMS_GPUS="):
        parse_gpu_list(text, "BNCLAIMS_GPUS")


def test_parse_nvidia_smi():
    assert parse_nvidia_smi(SMI) == ["0", "1"]
    assert parse_nvidia_smi(SMI_MIG) == ["MIG-aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
                                         "MIG-ffffffff-bbbb-cccc-dddd-eeeeeeeeeeee", "1"]
    assert parse_nvidia_smi("") == [] and parse_nvidia_smi("NVIDIA-SMI has failed") == []


def test_discovery_order():
    assert discover_gpus({"BNCLAIMS_GPUS": "2", "CUDA_VISIBLE_DEVICES": "7"}, no_smi) == (["0", "1"], "BNCLAIMS_GPUS")
    assert discover_gpus({"CUDA_VISIBLE_DEVICES": "4,5"}, no_smi) == (["4", "5"], "CUDA_VISIBLE_DEVICES")
    assert discover_gpus({}, lambda: SMI) == (["0", "1"], "nvidia-smi -L")
    assert discover_gpus({}, lambda: "") == ([], "nvidia-smi -L")


def test_each_worker_gets_its_gpu_from_nvidia_smi():
    envs = [{"PYTEST_XDIST_WORKER": f"gw{k}"} for k in range(3)]
    assert [assign_worker_gpu(env, lambda: SMI) for env in envs] == ["0", "1", "0"]
    assert [env["CUDA_VISIBLE_DEVICES"] for env in envs] == ["0", "1", "0"]
    assert all(env["CUDA_DEVICE_ORDER"] == "PCI_BUS_ID" for env in envs)


def test_workers_split_the_gpus_the_user_chose():
    env = {"PYTEST_XDIST_WORKER": "gw1", "CUDA_VISIBLE_DEVICES": "2,3", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}
    assert assign_worker_gpu(env, no_smi) == "3"
    assert env == {"PYTEST_XDIST_WORKER": "gw1", "CUDA_VISIBLE_DEVICES": "3", "CUDA_DEVICE_ORDER": "FASTEST_FIRST"}


@pytest.mark.parametrize("env", [
    {},  # not an xdist worker
    {"PYTEST_XDIST_WORKER": "gw0", "BNCLAIMS_GPU_PER_WORKER": "0"},  # switched off
    {"PYTEST_XDIST_WORKER": "gw0", "CUDA_VISIBLE_DEVICES": ""},  # the user hid every GPU
])
def test_environment_left_alone(env):
    before = dict(env)
    assert assign_worker_gpu(env, no_smi) is None
    assert env == before


def test_no_gpu_found_leaves_the_environment_alone():
    env = {"PYTEST_XDIST_WORKER": "gw1"}
    assert assign_worker_gpu(env, lambda: "") is None and env == {"PYTEST_XDIST_WORKER": "gw1"}


def test_malformed_worker_id_fails_even_without_gpus():
    with pytest.raises(ValueError, match="'worker7'"):
        assign_worker_gpu({"PYTEST_XDIST_WORKER": "worker7"}, lambda: "")


def test_xdist_workers_see_their_gpu_before_any_test_runs(pytester, monkeypatch):
    """Real pytest-xdist workers: the conftest call runs in each worker before collection."""
    pytester.makeconftest("from harness.device import assign_worker_gpu\nassign_worker_gpu()\n")
    pytester.makepyfile(test_seen="""
        import os, pathlib
        def record():
            worker = os.environ["PYTEST_XDIST_WORKER"]
            pathlib.Path(f"seen-{worker}").write_text(os.environ["CUDA_VISIBLE_DEVICES"])
        def test_a(): record()
        def test_b(): record()
    """)
    monkeypatch.setenv("PYTHONPATH", str(Path(harness.__file__).parent.parent))  # this checkout's harness
    monkeypatch.setenv("BNCLAIMS_GPUS", "5,7")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    result = pytester.runpytest_subprocess("-n", "2", "-p", "xdist", "-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
    seen = {p.name: p.read_text() for p in pytester.path.glob("seen-gw*")}
    assert seen and set(seen.items()) <= {("seen-gw0", "5"), ("seen-gw1", "7")}


def test_the_suite_computes_in_full_float32():
    import torch

    from harness.accel import check_float32
    from harness.device import full_float32

    torch.backends.cudnn.allow_tf32 = True  # PyTorch's own default for cuDNN convolutions
    try:
        full_float32()
        assert not torch.backends.cudnn.allow_tf32 and not torch.backends.cuda.matmul.allow_tf32
        check_float32("a test")  # raises when TF32 or autocast is on
    finally:
        full_float32()


def test_the_suite_flushes_denormals():
    """configure_threads (run by the plugin at start) flushes subnormal floats for the whole
    process, so no run turns it off behind the others' backs."""
    import torch

    from harness.device import configure_threads

    configure_threads()
    assert float(torch.tensor([1e-39]) * 1) == 0.0  # subnormal in float32


def test_one_compute_thread_unless_asked(monkeypatch):
    """Claims compute on one torch thread by default, whatever the cores and the xdist workers, so
    serial and parallel runs give the same bits; BNCLAIMS_THREADS asks for more."""
    import torch

    from harness.device import compute_threads, configure_threads, cpu_share

    before = torch.get_num_threads()
    try:
        monkeypatch.delenv("BNCLAIMS_THREADS", raising=False)
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "1")
        assert compute_threads() == 1 and configure_threads() == 1 and torch.get_num_threads() == 1
        assert cpu_share() == (os.cpu_count() or 1)  # the cores worker pools may fill
        monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", str(4 * (os.cpu_count() or 1)))
        assert cpu_share() == 1
        monkeypatch.setenv("BNCLAIMS_THREADS", "2")
        assert configure_threads() == 2 and torch.get_num_threads() == 2
        for bad in ("0", "two", "-1"):
            monkeypatch.setenv("BNCLAIMS_THREADS", bad)
            with pytest.raises(ValueError, match="BNCLAIMS_THREADS must be a positive integer"):
                compute_threads()
    finally:
        torch.set_num_threads(before)


def test_describe_names_the_cpu_threads():
    import torch

    from harness.device import describe

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert describe(torch.device("cpu")) == "cpu (1 thread)"
        torch.set_num_threads(2)
        assert describe(torch.device("cpu")) == "cpu (2 threads)"
    finally:
        torch.set_num_threads(before)
