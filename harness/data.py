"""Image data as tensors: synthetic CIFAR-like data, patches of real photographs, scikit-learn's
handwritten digits, and real CIFAR-10.

Images are kept as uint8 tensors (N, 3, H, W) with int64 labels: a quarter of the memory of
float32, and the same layout on CPU and GPU. Normalization and augmentation (random flip,
4-pixel zero-pad crop as in bjorck2018 App. B) are batched tensor ops, so they run wherever the
batch lives with no per-sample Python work.

Synthetic data: 10 classes, each an oriented texture (grating orientation and
frequency) plus a colour from a 5-colour palette shared by two classes. Per image: random phase
(translation), jitter of orientation, frequency, colour and contrast, a weaker distractor texture
and pixel noise. A small CNN learns the textures; a linear model on pixels can use the colour but
not the phase-randomized texture, so it scores clearly lower (tests/test_data.py shows both).
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

import numpy as np
import torch

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)  # channel means of the CIFAR-10 training set
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR10_ENV = "BNCLAIMS_CIFAR10"
NUM_CLASSES = 10
CIFAR10 = "CIFAR-10"  # what the stand-in sources declare they stand in for


class DataUnavailable(RuntimeError):
    """A dataset is missing or corrupt; the message says how to provide it."""


@dataclasses.dataclass(frozen=True)
class ImageData:
    name: str
    train_x: torch.Tensor  # uint8 (N, 3, H, W)
    train_y: torch.Tensor  # int64 (N,)
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, float, float]  # per channel, on the [0, 1] scale
    std: tuple[float, float, float]
    hflip: bool = True  # whether a mirrored image is still an image of its class (not for digits)
    stands_in_for: str | None = None  # the papers' data these images replace (a record made on them counts as a stand-in)

    def to(self, device: torch.device | str) -> ImageData:
        return dataclasses.replace(
            self, **{f: getattr(self, f).to(device) for f in ("train_x", "train_y", "test_x", "test_y")}
        )

    @property
    def resolution(self) -> int:
        return int(self.train_x.shape[-1])


def normalize(x: torch.Tensor, mean, std) -> torch.Tensor:
    """uint8 images → float32, channel-wise standardized."""
    if x.dtype != torch.uint8:
        raise TypeError(f"expected uint8 images, got {x.dtype}")
    m = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    s = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return (x.float() / 255.0 - m) / s


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4, hflip: bool = True) -> torch.Tensor:
    """Random horizontal flip (when ``hflip``), then a random crop of the zero-padded image, for a
    whole batch. The flip draws are made either way, so the crops do not depend on ``hflip``."""
    n, c, h, w = x.shape
    draw = {"generator": generator, "device": generator.device}
    flip = (torch.rand(n, **draw) < 0.5).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (n,), **draw).to(x.device)
    dy = torch.randint(0, 2 * pad + 1, (n,), **draw).to(x.device)
    if hflip:
        x = torch.where(flip.view(n, 1, 1, 1), x.flip(-1), x)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (dy.view(n, 1) + torch.arange(h, device=x.device)).view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
    cols = (dx.view(n, 1) + torch.arange(w, device=x.device)).view(n, 1, 1, w).expand(n, c, h, w)
    return padded.gather(2, rows).gather(3, cols)


def synthetic_cifar(
    n_train: int = 10_000, n_test: int = 2_000, resolution: int = 32, seed: int = 0, noise: float = 0.6
) -> ImageData:
    """Deterministic CIFAR-like data (see the module docstring); well under a second for 12k images."""
    if resolution < 8:
        raise ValueError(f"resolution must be at least 8 pixels, got {resolution}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"need at least one training and one test image, got {n_train} and {n_test}")
    g = torch.Generator().manual_seed(seed)
    x, y = _synthesize(n_train + n_test, resolution, g, noise)
    mean = tuple(float(v) for v in x[:n_train].float().mean(dim=(0, 2, 3)) / 255.0)
    std = tuple(float(v) for v in x[:n_train].float().std(dim=(0, 2, 3)) / 255.0)
    return ImageData(f"synthetic-{resolution}px", x[:n_train], y[:n_train], x[n_train:], y[n_train:], mean, std,
                     stands_in_for=CIFAR10)


def _synthesize(n: int, res: int, g: torch.Generator, noise: float) -> tuple[torch.Tensor, torch.Tensor]:
    def u(*shape, lo=0.0, hi=1.0):
        return lo + (hi - lo) * torch.rand(*shape, generator=g)

    labels = torch.randint(0, NUM_CLASSES, (n,), generator=g)
    palette = torch.tensor(
        [[0.9, 0.3, 0.3], [0.3, 0.8, 0.3], [0.3, 0.4, 0.9], [0.85, 0.8, 0.3], [0.7, 0.35, 0.85]]
    )
    orientation = labels.float() * (torch.pi / NUM_CLASSES) + u(n, lo=-0.13, hi=0.13)  # 18° apart, ±7.4° jitter
    frequency = (2.0 + (labels % 3).float()) * u(n, lo=0.9, hi=1.1) / 8.0  # cycles per pixel × 8-pixel scale
    phase = u(n, hi=2 * torch.pi)  # translation
    yy, xx = torch.meshgrid(torch.arange(res).float(), torch.arange(res).float(), indexing="ij")

    def grating(theta, freq, ph):
        proj = xx * torch.cos(theta).view(-1, 1, 1) + yy * torch.sin(theta).view(-1, 1, 1)
        return torch.sin(2 * torch.pi * freq.view(-1, 1, 1) * proj + ph.view(-1, 1, 1))

    texture = grating(orientation, frequency, phase) * u(n, lo=0.0, hi=1.0).view(-1, 1, 1) ** 2  # some images nearly flat
    distractor = grating(u(n, hi=torch.pi), u(n, lo=0.2, hi=0.45), u(n, hi=2 * torch.pi)) * u(n, lo=0.2, hi=0.7).view(-1, 1, 1)
    colour = palette[labels % 5] + u(n, 3, lo=-0.12, hi=0.12)
    background = u(n, 3, lo=0.3, hi=0.6)
    img = background.view(n, 3, 1, 1) + 0.35 * colour.view(n, 3, 1, 1) * (1 + texture.unsqueeze(1))
    img = img + 0.2 * distractor.unsqueeze(1) + noise * 0.25 * torch.randn(n, 3, res, res, generator=g)
    return (img.clamp(0, 1) * 255).round().to(torch.uint8), labels


def natural_patches(n_train: int = 10_000, n_test: int = 2_000, size: int = 32, seed: int = 0,
                    scales: tuple[int, ...] = (1, 2, 4)) -> ImageData:
    """Patches of real photographs: scikit-learn's two colour sample photographs (china.jpg and
    flower.jpg, 427×640 RGB, shipped inside its wheel, so no download), cut into ``size``×``size``
    patches.

    Each patch takes one of the two photographs, a scale s from ``scales`` and a uniformly random
    position on the s-pixel grid: an (s·size)² crop averaged over s×s blocks down to ``size``², so the patches span
    several spatial scales of the photographs (their per-channel moments and 1/f power spectrum
    are those of natural images). Everything is drawn from ``seed``, so the same arguments give
    the same patches; train and test patches are separate draws from the same photographs.

    The labels carry no information: they are drawn uniformly at random from ``NUM_CLASSES``
    classes (from ``seed``), which suits measurements at initialization, where a label only picks
    the cross-entropy's target; nothing can be learnt from them. The per-channel mean and std
    (on the [0, 1] scale) are computed from the training patches.
    """
    if size < 8:
        raise ValueError(f"patch size must be at least 8 pixels, got {size}")
    if n_train < 1 or n_test < 1:
        raise ValueError(f"need at least one training and one test patch, got {n_train} and {n_test}")
    if not scales or any(not isinstance(k, int) or k < 1 for k in scales):
        raise ValueError(f"scales must be positive integers, got {scales}")
    photos = _sample_photographs()
    side = min(min(p.shape[:2]) for p in photos)
    if max(scales) * size > side:
        raise ValueError(f"a {size}-pixel patch at scale {max(scales)} needs a {max(scales) * size}-pixel crop; "
                         f"the photographs are only {side} pixels high")
    rng = np.random.default_rng(seed)
    n = n_train + n_test
    which, scale = rng.integers(0, len(photos), n), rng.integers(0, len(scales), n)
    out = np.empty((n, size, size, 3), dtype=np.uint8)
    offsets = np.arange(size)
    for p, photo in enumerate(photos):
        for j, k in enumerate(scales):
            # the photograph averaged over k×k blocks; a crop on this grid is a (k·size)² crop of the original
            h, w = photo.shape[0] // k, photo.shape[1] // k
            small = np.round(photo[: h * k, : w * k].astype(np.float64).reshape(h, k, w, k, 3).mean((1, 3))).astype(np.uint8)
            idx = np.flatnonzero((which == p) & (scale == j))
            top, left = rng.integers(0, h - size + 1, idx.size), rng.integers(0, w - size + 1, idx.size)
            out[idx] = small[(top[:, None] + offsets)[:, :, None], (left[:, None] + offsets)[:, None, :]]
    labels = torch.from_numpy(rng.integers(0, NUM_CLASSES, n)).to(torch.int64)
    x = torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()
    train = x[:n_train].double() / 255.0
    mean = tuple(float(v) for v in train.mean(dim=(0, 2, 3)))
    std = tuple(float(v) for v in train.std(dim=(0, 2, 3)))
    return ImageData(f"natural-patches-{size}px", x[:n_train], labels[:n_train], x[n_train:], labels[n_train:], mean, std,
                     stands_in_for=CIFAR10)


DIGITS_TEST = 360  # a fifth of the 1,797 digits, 35–37 per class


def digits(resolution: int = 8) -> ImageData:
    """scikit-learn's handwritten digits (``load_digits``: 1,797 real 8×8 grey images of the
    digits 0–9 at 17 grey levels, shipped inside its wheel, so no download), as a ten-class image
    dataset like CIFAR-10.

    - split: a fixed stratified split, 360 test images (35–37 per class, in proportion) and 1,437 training images,
      the same on every call (``train_test_split(random_state=0)``);
    - pixels: grey levels 0–16 scaled to 0–255 and copied into the three channels, so every model
      built for CIFAR-10 takes them unchanged; ``resolution`` > 8 upsamples bilinearly (a multiple
      of 8);
    - normalization: the training images' mean and std (the same in every channel);
    - augmentation: no horizontal flip (a mirrored digit is not the same digit; ``hflip=False``);
      the pad-crop applies, its padding scaled with the resolution by the caller.
    """
    if resolution < 8 or resolution % 8:
        raise ValueError(f"digits come at 8×8 and upsample by whole factors: resolution must be 8, 16, 24, ..., got {resolution}")
    try:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split
    except ImportError as err:
        raise DataUnavailable(f"the digits need scikit-learn (pip install 'scikit-learn>=1.3'): {err}") from None
    bunch = load_digits()
    images, labels = np.asarray(bunch.images), np.asarray(bunch.target)
    if images.shape[1:] != (8, 8) or images.min() < 0 or images.max() > 16 or sorted(set(labels.tolist())) != list(range(10)):
        raise DataUnavailable(f"scikit-learn's digits are not 8×8 images at levels 0–16 of ten classes: {images.shape}")
    idx_train, idx_test = train_test_split(np.arange(len(labels)), test_size=DIGITS_TEST, stratify=labels, random_state=0)
    x = torch.from_numpy(np.round(images * (255.0 / 16.0))).float().unsqueeze(1)
    if resolution > 8:
        x = torch.nn.functional.interpolate(x, size=(resolution, resolution), mode="bilinear", align_corners=False)
    x = x.round().clamp(0, 255).to(torch.uint8).expand(-1, 3, -1, -1).contiguous()
    y = torch.from_numpy(labels).to(torch.int64)
    train = x[idx_train, :1].double() / 255.0
    mean, std = float(train.mean()), float(train.std())
    return ImageData(f"digits-{resolution}px", x[idx_train], y[idx_train], x[idx_test], y[idx_test], (mean,) * 3, (std,) * 3,
                     hflip=False, stands_in_for=CIFAR10)


def _sample_photographs() -> list[np.ndarray]:
    """scikit-learn's sample photographs as uint8 (H, W, 3) arrays."""
    try:
        from sklearn.datasets import load_sample_images
    except ImportError as err:
        raise DataUnavailable(f"natural patches need scikit-learn (pip install 'scikit-learn>=1.3'): {err}") from None
    photos = [np.asarray(p) for p in load_sample_images().images]
    if not photos or any(p.dtype != np.uint8 or p.ndim != 3 or p.shape[2] != 3 for p in photos):
        raise DataUnavailable(f"scikit-learn's sample photographs are not RGB uint8 images: {[p.shape for p in photos]}")
    return photos


def cifar10_root(option: str | None = None) -> Path | None:
    """Where CIFAR-10 lives: the --cifar10-root option, else the BNCLAIMS_CIFAR10 variable."""
    value = option or os.environ.get(CIFAR10_ENV)
    return Path(value) if value else None


def load_cifar10(root: Path | str | None) -> ImageData:
    """CIFAR-10 from ``root/cifar-10-batches-py`` through torchvision (never downloads).

    Raises DataUnavailable, saying how to provide the data, when it is missing or corrupt.
    """
    how = (
        f"put the python version of CIFAR-10 (cifar-10-batches-py/) under a folder and pass "
        f"--cifar10-root FOLDER or set {CIFAR10_ENV}=FOLDER; torchvision.datasets.CIFAR10(FOLDER, "
        f"download=True) fetches it on a machine with internet access"
    )
    if root is None:
        raise DataUnavailable(f"CIFAR-10 not configured: {how}")
    from torchvision.datasets import CIFAR10

    try:
        train = CIFAR10(str(root), train=True, download=False)
        test = CIFAR10(str(root), train=False, download=False)
    except RuntimeError as err:  # torchvision: "Dataset not found or corrupted"
        raise DataUnavailable(f"CIFAR-10 under {root} is missing or corrupt ({err}): {how}") from None
    except Exception as err:  # unreadable pickles
        raise DataUnavailable(f"CIFAR-10 under {root} could not be read ({type(err).__name__}: {err}): {how}") from None

    def tensors(ds):
        data = np.asarray(ds.data)
        if data.dtype != np.uint8 or data.ndim != 4 or data.shape[1:] != (32, 32, 3):
            raise DataUnavailable(f"CIFAR-10 under {root} has unexpected shape {data.shape}: {how}")
        return torch.from_numpy(data).permute(0, 3, 1, 2).contiguous(), torch.tensor(ds.targets, dtype=torch.int64)

    (trx, try_), (tex, tey) = tensors(train), tensors(test)
    return ImageData("cifar10", trx, try_, tex, tey, CIFAR10_MEAN, CIFAR10_STD)
