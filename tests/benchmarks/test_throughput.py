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
after every test. Sizes are ``--bench KEY=VALUE`` options (defaults: CPU ≤ about a minute; CUDA
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
from harness.claimkit.plugin import report_dir
from harness.train import TrainConfig, train

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
                raise ValueError(f"--bench levers=: unknown lever {part!r} (levers: {', '.join(LEVERS)}, compile=MODE, all)")
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
    def from_options(cls, pairs: list[str]) -> Settings:
        """The sizes for ``--bench KEY=VALUE`` options over the defaults of the device (``device=``:
        auto, cpu or cuda[:N]); an unknown key or a value of the wrong type is a ``ValueError``."""
        given = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in DEFAULTS:
                raise ValueError(f"--bench {pair!r}: expected KEY=VALUE with KEY one of {', '.join(DEFAULTS)}")
            given[key] = value
        device = select_device(given.pop("device", "auto"))
        values = {}
        for key, (cpu, cuda) in DEFAULTS.items():
            if key == "device":
                continue
            default = cuda if device.type == "cuda" else cpu
            try:
                values[key] = default if key not in given else type(default)(given[key])
            except ValueError:
                raise ValueError(f"--bench {key}={given[key]!r}: expected {type(default).__name__}") from None
        return cls(device=device, **values)

    def as_dict(self) -> dict:
        return {k: str(v) if isinstance(v, torch.device) else v for k, v in dataclasses.asdict(self).items()}


_CPU_WORKERS = min(8, max(1, (os.cpu_count() or 2) - 1))
DEFAULTS = {  # key: (CPU default, CUDA default)
    "device": ("auto", "auto"),
    "depth": (20, 110), "width": (16, 16), "resolution": (16, 32), "batch": (32, 128),
    "steps": (8, 50), "rounds": (3, 5), "warmup_rounds": (1, 1), "loader_workers": (0, _CPU_WORKERS),
    "n_train": (1024, 10_000),
    "levers": ("channels_last", "cudnn_benchmark,channels_last,tf32,autocast_bf16,compile,all"),
    "small_depth": (8, 20), "small_width": (8, 16), "small_resolution": (8, 32), "small_steps": (200, 200),
    "lrs": (2, 4), "seeds": (2, 2), "concurrency": ("2", "2,4,8"),
}


def bench_settings(config: pytest.Config) -> Settings:
    """This session's sizes (``--bench``), parsed once; a bad option stops the run in one line."""
    if not hasattr(config, "_bnclaims_bench"):
        try:
            settings = Settings.from_options(config.getoption("bench"))
            parse_levers(settings.levers)
        except ValueError as err:
            raise pytest.UsageError(str(err)) from None
        config._bnclaims_bench = settings
    return config._bnclaims_bench


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    s = bench_settings(metafunc.config)
    if "variant" in metafunc.fixturenames:
        variants = ["plain", "project"] + [f"project+{name}" for name in parse_levers(s.levers)]
        metafunc.parametrize("variant", variants)
    if "workers" in metafunc.fixturenames:
        counts = [0] + [int(n) for n in s.concurrency.split(",") if n.strip()]
        metafunc.parametrize("workers", counts, ids=[f"workers={n}" for n in counts])


@pytest.fixture(scope="module")
def bench(request) -> Settings:
    return bench_settings(request.config)


class Table(dict):
    """The JSON table of this run (reports/throughput.json), rewritten after every test."""

    def __init__(self, path: Path, s: Settings):
        super().__init__(device=describe(s.device), torch=torch.__version__, python=platform.python_version(),
                         threads=torch.get_num_threads(), settings=s.as_dict(), throughput={}, concurrency={})
        self.path = path

    def write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(self, indent=2) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def table(request, bench) -> Table:
    return Table(report_dir(request.config) / "throughput.json", bench)


@pytest.fixture(scope="module")
def images(bench):
    return synthetic_cifar(bench.n_train, 1, resolution=bench.resolution, seed=0)


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


def sync(s: Settings):
    if s.device.type == "cuda":
        torch.cuda.synchronize(s.device)


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


def plain_loop(images, s: Settings):
    """The conventional eager loop: DataLoader + torchvision transforms, SGD as TrainConfig's."""
    from torchvision import transforms as T

    transform = T.Compose([T.RandomCrop(s.resolution, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                           T.Normalize(images.mean, images.std)])
    cuda = s.device.type == "cuda"
    loader = torch.utils.data.DataLoader(
        PILImages(images.train_x, images.train_y, transform), batch_size=s.batch, shuffle=True, drop_last=True,
        num_workers=s.loader_workers, pin_memory=cuda, persistent_workers=s.loader_workers > 0)
    torch.manual_seed(0)
    model = resnet_cifar(s.depth, "batch", s.width).to(s.device).train()
    cfg = TrainConfig(lr=0.05, steps=s.steps)
    opt = torch.optim.SGD(model.parameters(), lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay)
    batches = iter(loader)

    def run_steps():
        nonlocal batches
        for _ in range(s.steps):
            try:
                x, y = next(batches)
            except StopIteration:
                batches = iter(loader)
                x, y = next(batches)
            x, y = x.to(s.device, non_blocking=True), y.to(s.device, non_blocking=True)
            loss = F.cross_entropy(model(x), y)
            loss.item()  # what the project loop does each step (divergence check); tutorials log it too
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        sync(s)

    return run_steps


def project_loop(images, accel: Accel | None, s: Settings):
    torch.manual_seed(0)
    model = resnet_cifar(s.depth, "batch", s.width)
    data = images.to(s.device)
    rounds = iter(range(10**9))

    def run_steps():
        cfg = TrainConfig(lr=0.05, steps=s.steps, batch_size=s.batch, seed=next(rounds))
        result = train(model, data, cfg, s.device, eval_train_samples=1, accel=accel)
        assert result.steps_done == s.steps and not result.diverged
        sync(s)

    return run_steps


@pytest.mark.benchmark(group="training-throughput")
def test_training_throughput(benchmark, table, images, variant, bench):
    s = bench
    if variant == "plain":
        target = plain_loop(images, s)
    else:
        target = project_loop(images, parse_levers(s.levers)[variant.removeprefix("project+")] if "+" in variant else None, s)
    seconds, timer = seconds_per_round(benchmark, target, s.rounds, s.warmup_rounds)
    ips = s.steps * s.batch / seconds
    plain = table["throughput"].get("plain", {}).get("images_per_s")
    row = {"images_per_s": ips, "seconds_per_round": seconds, "ratio_to_plain": ips / plain if plain else None,
           "timed_by": timer}
    table["throughput"][variant] = row
    benchmark.extra_info.update(row, model=f"ResNet-{s.depth} width {s.width}",
                                resolution=s.resolution, batch=s.batch, steps_per_round=s.steps)
    table.write()
    assert ips > 0


def small_runs(s: Settings) -> list[Run]:
    lrs = np.geomspace(0.1, 0.001, s.lrs).tolist() if s.lrs > 1 else [0.1]
    model = {"depth": s.small_depth, "norm": "batch", "width": s.small_width}
    return [Run(model, TrainConfig(lr=lr, steps=s.small_steps, batch_size=128, seed=seed))
            for lr in lrs for seed in range(s.seeds)]


@pytest.fixture(scope="module")
def small_data(bench):
    return synthetic_cifar(2048, 512, resolution=bench.small_resolution, seed=0)


@pytest.mark.benchmark(group="many-small-runs")
def test_many_small_runs(benchmark, table, small_data, workers, bench):
    s = bench
    runs, results = small_runs(s), []
    # the workers share the cores this process uses: more threads than cores would only spin
    threads = max(1, torch.get_num_threads() // max(1, workers))

    def target():
        results.append(run_all(runs, small_data, s.device, workers=workers, threads_per_worker=threads,
                               eval_train_samples=512))

    # one round: each spawns its workers again, and their start-up is part of the cost
    seconds, timer = seconds_per_round(benchmark, target, rounds=1, warmup_rounds=0)
    finals = [r.losses[-1] for r in results[-1]]
    sequential = table["concurrency"].get("workers=0")
    row = {"workers": workers, "threads_per_worker": threads, "runs": len(runs), "wall_s": seconds, "timed_by": timer, "final_losses": finals,
           "speedup_vs_sequential": sequential["wall_s"] / seconds if sequential else None}
    if sequential:
        row["max_final_loss_difference"] = max(abs(a - b) for a, b in zip(finals, sequential["final_losses"]))
        if s.device.type == "cpu" and threads == torch.get_num_threads():
            assert row["max_final_loss_difference"] == 0.0  # bit-identical on the CPU at the same thread count
    table["concurrency"][f"workers={workers}"] = row
    benchmark.extra_info.update({k: v for k, v in row.items() if k != "final_losses"})
    table.write()


def test_lever_specs():
    """Not a benchmark (runs with the unit tests): the ``--bench levers=`` syntax, and bad options."""
    levers = parse_levers("tf32, compile=reduce-overhead,channels_last+autocast_bf16,all")
    assert levers == {"tf32": Accel(tf32=True), "compile=reduce-overhead": Accel(compile="reduce-overhead"),
                      "channels_last+autocast_bf16": Accel(channels_last=True, autocast_bf16=True),
                      "all": Accel(**{lever: True for lever in LEVERS})}
    for bad in ("fp8", "tf32=on", "compile=fastest"):
        with pytest.raises(ValueError, match="compile must be|unknown lever"):
            parse_levers(bad)
    with pytest.raises(ValueError, match=r"--bench 'dpeth=3': expected KEY=VALUE with KEY one of device, depth"):
        Settings.from_options(["dpeth=3"])
    with pytest.raises(ValueError, match=r"--bench depth='deep': expected int"):
        Settings.from_options(["depth=deep"])
    assert Settings.from_options(["device=cpu", "depth=8", "levers=tf32"]).depth == 8
