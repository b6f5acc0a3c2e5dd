"""Training throughput benchmarks (pytest-benchmark), not timed tests: ``pytest -m benchmark``.

1. ``test_training_throughput``: images/s of ResNet training, in one run,
   - ``plain``: an eager PyTorch loop fed by ``torch.utils.data.DataLoader`` over a torchvision
     ``datasets``-style dataset (PIL images, RandomCrop(padding=4), RandomHorizontalFlip, ToTensor,
     Normalize), with the same SGD step and a per-step ``loss.item()`` as the project loop;
   - ``project``: ``harness.train.train`` (uint8 data on the device, batched flip/crop, device-side
     permutation);
   - ``project+<lever>``: the same with one lever of ``harness.accel.Accel`` (CUDA: each of
     cudnn_benchmark, channels_last, tf32, autocast_bf16, compile, and all together).
   Both loops draw from the same synthetic uint8 images (``harness.data.synthetic_cifar``).
2. ``test_many_small_runs``: total wall time of an LR grid × seeds of a small net,
   ``harness.concurrent.run_all`` with 0 (sequential), 2, 4, 8 worker processes.

Each test puts its numbers in ``benchmark.extra_info`` (images/s, ratio to ``plain``; wall time,
speed-up over sequential) and into ``reports/throughput.json`` (``BNCLAIMS_REPORT_DIR``), rewritten
after every test. Sizes come from environment variables (defaults: CPU ≤ about a minute; CUDA
ResNet-110 at 32 px, batch 128), see ``Settings``. Run without ``-n``: pytest-benchmark switches
itself off under xdist; the same protocol is then timed by hand, and ``timed_by`` in the table
says so.
"""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from harness.accel import LEVERS, Accel
from harness.concurrent import Run, run_all
from harness.data import synthetic_cifar
from harness.device import describe, select_device
from harness.models import resnet_cifar
from harness.train import TrainConfig, train

ENV = "BNCLAIMS_BENCH_"


def _env(name: str, cpu, cuda, device: torch.device):
    default = cuda if device.type == "cuda" else cpu
    value = os.environ.get(ENV + name)
    return default if value is None else type(default)(value)


def parse_levers(spec: str) -> dict[str, Accel]:
    """"tf32,compile=reduce-overhead,channels_last+autocast_bf16,all" → {name: Accel}."""
    out = {}
    for item in filter(None, (s.strip() for s in spec.split(","))):
        if item == "all":
            out[item] = Accel(**{lever: True for lever in LEVERS})
            continue
        kwargs = {}
        for part in item.split("+"):
            name, _, mode = part.partition("=")
            if name not in LEVERS or (mode and name != "compile"):
                raise ValueError(f"{ENV}LEVERS: unknown lever {part!r} (levers: {', '.join(LEVERS)}, compile=MODE, all)")
            kwargs[name] = mode or True
        out[item] = Accel(**kwargs)
    return out


@dataclasses.dataclass(frozen=True)
class Settings:
    device: torch.device
    depth: int
    width: int
    resolution: int
    batch: int
    steps: int  # training steps per timed round
    rounds: int
    warmup_rounds: int
    loader_workers: int
    n_train: int
    levers: str
    # many small runs
    small_depth: int
    small_width: int
    small_resolution: int
    small_steps: int
    lrs: int
    seeds: int
    concurrency: str

    @classmethod
    def from_env(cls) -> Settings:
        device = select_device(os.environ.get(ENV + "DEVICE", "auto"))
        cpu_workers = min(8, max(1, (os.cpu_count() or 2) - 1))
        return cls(
            device=device,
            depth=_env("DEPTH", 20, 110, device),
            width=_env("WIDTH", 16, 16, device),
            resolution=_env("RESOLUTION", 16, 32, device),
            batch=_env("BATCH", 32, 128, device),
            steps=_env("STEPS", 8, 50, device),
            rounds=_env("ROUNDS", 3, 5, device),
            warmup_rounds=_env("WARMUP", 1, 1, device),
            loader_workers=_env("LOADER_WORKERS", 0, cpu_workers, device),
            n_train=_env("N_TRAIN", 1024, 10_000, device),
            levers=_env("LEVERS", "channels_last", "cudnn_benchmark,channels_last,tf32,autocast_bf16,compile,all", device),
            small_depth=_env("SMALL_DEPTH", 8, 20, device),
            small_width=_env("SMALL_WIDTH", 8, 16, device),
            small_resolution=_env("SMALL_RESOLUTION", 8, 32, device),
            small_steps=_env("SMALL_STEPS", 200, 200, device),
            lrs=_env("LRS", 2, 4, device),
            seeds=_env("SEEDS", 2, 2, device),
            concurrency=_env("CONCURRENCY", "2", "2,4,8", device),
        )

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, torch.device) else v for k, v in dataclasses.asdict(self).items()}


SETTINGS = Settings.from_env()
LEVER_SET = parse_levers(SETTINGS.levers)
WORKER_COUNTS = [0] + [int(n) for n in SETTINGS.concurrency.split(",") if n.strip()]


class Table(dict):
    """The JSON table of this run (reports/throughput.json), rewritten after every test."""

    def __init__(self, path: Path):
        super().__init__(device=describe(SETTINGS.device), torch=torch.__version__, python=platform.python_version(),
                         threads=torch.get_num_threads(), settings=SETTINGS.as_dict(), throughput={}, concurrency={})
        self.path = path

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self, indent=2) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def table(request) -> Table:
    report_dir = Path(os.environ.get("BNCLAIMS_REPORT_DIR") or Path(request.config.rootpath) / "reports")
    return Table(report_dir / "throughput.json")


@pytest.fixture(scope="module")
def images():
    return synthetic_cifar(SETTINGS.n_train, 1, resolution=SETTINGS.resolution, seed=0)


def seconds_per_round(benchmark, target, rounds: int, warmup_rounds: int) -> tuple[float, str]:
    """Median seconds of one round, and what timed it: pytest-benchmark, or, when it switched itself
    off (under xdist's ``-n``, or ``--benchmark-disable``), the same
    protocol (warm-up rounds, then timed rounds, median) by hand, so the numbers stay real."""
    if benchmark.enabled:
        benchmark.pedantic(target, rounds=rounds, warmup_rounds=warmup_rounds, iterations=1)
        return benchmark.stats.stats.median, "pytest-benchmark"
    benchmark.pedantic(lambda: None)  # marks the fixture used; pytest-benchmark records nothing
    for _ in range(warmup_rounds):
        target()
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        target()
        times.append(time.perf_counter() - start)
    return statistics.median(times), "by hand (pytest-benchmark disabled: run without -n)"


def sync():
    if SETTINGS.device.type == "cuda":
        torch.cuda.synchronize(SETTINGS.device)


class PILImages(torch.utils.data.Dataset):
    """torchvision ``datasets``-style (as CIFAR10): HWC uint8 array, PIL image per item, transform."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, transform):
        self.data = x.permute(0, 2, 3, 1).contiguous().numpy()
        self.targets = y.tolist()
        self.transform = transform

    def __len__(self):
        return len(self.targets)

    def __getitem__(self, i):
        from PIL import Image

        return self.transform(Image.fromarray(self.data[i])), self.targets[i]


def plain_loop(images):
    """The conventional eager loop: DataLoader + torchvision transforms, SGD as TrainConfig's."""
    from torchvision import transforms as T

    transform = T.Compose([T.RandomCrop(SETTINGS.resolution, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(images.mean, images.std)])
    cuda = SETTINGS.device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        PILImages(images.train_x, images.train_y, transform), batch_size=SETTINGS.batch, shuffle=True, drop_last=True,
        num_workers=SETTINGS.loader_workers, pin_memory=cuda, persistent_workers=SETTINGS.loader_workers > 0)
    torch.manual_seed(0)
    model = resnet_cifar(SETTINGS.depth, "batch", SETTINGS.width).to(SETTINGS.device).train()
    cfg = TrainConfig(lr=0.05, steps=SETTINGS.steps)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    batches = iter(loader)

    def run_steps():
        nonlocal batches
        for _ in range(SETTINGS.steps):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            x, y = x.to(SETTINGS.device, non_blocking=True), y.to(SETTINGS.device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            loss.item()  # what the project loop does each step (divergence check); tutorials log it too
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync()

    return run_steps


def project_loop(images, accel: Accel | None):
    torch.manual_seed(0)
    model = resnet_cifar(SETTINGS.depth, "batch", SETTINGS.width)
    data = images.to(SETTINGS.device)
    rounds = iter(range(10**9))

    def run_steps():
        cfg = TrainConfig(lr=0.05, steps=SETTINGS.steps, batch_size=SETTINGS.batch, seed=next(rounds))
        result = train(model, data, cfg, SETTINGS.device, eval_train_samples=1, accel=accel)
        assert result.steps_done == SETTINGS.steps and not result.diverged
        sync()

    return run_steps


VARIANTS = ["plain", "project"] + [f"project+{name}" for name in LEVER_SET]


@pytest.mark.benchmark(group="training-throughput")
@pytest.mark.parametrize("variant", VARIANTS)
def test_training_throughput(benchmark, table, images, variant):
    if variant == "plain":
        target = plain_loop(images)
    else:
        target = project_loop(images, LEVER_SET[variant.removeprefix("project+")] if "+" in variant else None)
    seconds, timer = seconds_per_round(benchmark, target, SETTINGS.rounds, SETTINGS.warmup_rounds)
    ips = SETTINGS.steps * SETTINGS.batch / seconds
    plain = table["throughput"].get("plain", {}).get("images_per_s")
    row = {"images_per_s": ips, "seconds_per_round": seconds, "ratio_to_plain": ips / plain if plain else None,
           "timed_by": timer}
    table["throughput"][variant] = row
    benchmark.extra_info.update(row, model=f"ResNet-{SETTINGS.depth} width {SETTINGS.width}",
                                resolution=SETTINGS.resolution, batch=SETTINGS.batch, steps_per_round=SETTINGS.steps)
    table.write()
    assert ips > 0


def small_runs() -> list[Run]:
    lrs = np.geomspace(0.1, 0.001, SETTINGS.lrs).tolist() if SETTINGS.lrs > 1 else [0.1]
    model = {"depth": SETTINGS.small_depth, "norm": "batch", "width": SETTINGS.small_width}
    return [Run(model, TrainConfig(lr=lr, steps=SETTINGS.small_steps, batch_size=128, seed=seed))
            for lr in lrs for seed in range(SETTINGS.seeds)]


@pytest.fixture(scope="module")
def small_data():
    return synthetic_cifar(2048, 512, resolution=SETTINGS.small_resolution, seed=0)


@pytest.mark.benchmark(group="many-small-runs")
@pytest.mark.parametrize("workers", WORKER_COUNTS, ids=[f"workers={n}" for n in WORKER_COUNTS])
def test_many_small_runs(benchmark, table, small_data, workers):
    runs, results = small_runs(), []
    # the workers share the cores this process uses: more threads than cores would only spin
    threads = max(1, torch.get_num_threads() // max(1, workers))

    def target():
        results.append(run_all(runs, small_data, SETTINGS.device, workers=workers, threads_per_worker=threads,
                               eval_train_samples=512))

    # one round: each spawns its workers again, and their start-up is part of the cost
    seconds, timer = seconds_per_round(benchmark, target, rounds=1, warmup_rounds=0)
    finals = [r.losses[-1] for r in results[-1]]
    sequential = table["concurrency"].get("workers=0")
    row = {"workers": workers, "threads_per_worker": threads, "runs": len(runs), "wall_s": seconds, "timed_by": timer, "final_losses": finals,
           "speedup_vs_sequential": sequential["wall_s"] / seconds if sequential else None}
    if sequential:
        row["max_final_loss_difference"] = max(abs(a - b) for a, b in zip(finals, sequential["final_losses"]))
        if SETTINGS.device.type == "cpu" and threads == torch.get_num_threads():
            assert row["max_final_loss_difference"] == 0.0  # bit-identical on the CPU at the same thread count
    table["concurrency"][f"workers={workers}"] = row
    benchmark.extra_info.update({k: v for k, v in row.items() if k != "final_losses"})
    table.write()


def test_lever_specs():
    """Not a benchmark (runs with the unit tests): the BNCLAIMS_BENCH_LEVERS syntax."""
    levers = parse_levers("tf32, compile=reduce-overhead,channels_last+autocast_bf16,all")
    assert levers == {"tf32": Accel(tf32=True), "compile=reduce-overhead": Accel(compile="reduce-overhead"),
                      "channels_last+autocast_bf16": Accel(channels_last=True, autocast_bf16=True),
                      "all": Accel(**{lever: True for lever in LEVERS})}
    for bad in ("fp8", "tf32=on", "compile=fastest"):
        with pytest.raises(ValueError, match="compile must be|unknown lever"):
            parse_levers(bad)
