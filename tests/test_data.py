"""Data: synthetic CIFAR-like data (deterministic, learnable by a CNN, less so by a linear model),
batched augmentation against a per-image reference, and the real CIFAR-10 path on fake files."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from harness.data import (CIFAR10_ENV, DataUnavailable, augment, cifar10_root, digits, load_cifar10, natural_patches, normalize,
                          synthetic_cifar)


def test_synthetic_is_deterministic_and_well_formed():
    a, b = synthetic_cifar(200, 50, resolution=16, seed=3), synthetic_cifar(200, 50, resolution=16, seed=3)
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_y, b.test_y)
    assert not torch.equal(a.train_x, synthetic_cifar(200, 50, resolution=16, seed=4).train_x)
    assert a.train_x.dtype == torch.uint8 and a.train_x.shape == (200, 3, 16, 16)
    assert set(a.train_y.tolist()) == set(range(10))
    x = normalize(a.train_x, a.mean, a.std)
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-4 and (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3


def test_natural_patches_are_deterministic_photograph_patches():
    a, b = natural_patches(300, 60, seed=3), natural_patches(300, 60, seed=3)
    assert a.name == "natural-patches-32px" and a.resolution == 32
    assert a.train_x.dtype == torch.uint8 and a.train_x.shape == (300, 3, 32, 32) and a.test_x.shape == (60, 3, 32, 32)
    assert a.train_y.dtype == torch.int64 and a.train_y.shape == (300,) and set(a.train_y.tolist()) == set(range(10))
    assert torch.equal(a.train_x, b.train_x) and torch.equal(a.test_x, b.test_x) and torch.equal(a.train_y, b.train_y)
    other = natural_patches(300, 60, seed=4)
    assert not torch.equal(a.train_x, other.train_x) and not torch.equal(a.train_y, other.train_y)
    x = normalize(a.train_x, a.mean, a.std)  # the moments are the training patches'
    assert x.mean(dim=(0, 2, 3)).abs().max() < 1e-4 and (x.std(dim=(0, 2, 3)) - 1).abs().max() < 1e-3
    # colour photographs: the channels differ in their means (a grey set would not), and patches vary
    assert max(a.mean) - min(a.mean) > 0.01 and len({bytes(p.numpy()) for p in a.train_x}) == 300
    # natural images: neighbouring pixels are strongly correlated (1/f spectrum), unlike noise
    f = a.train_x.double()
    assert torch.corrcoef(torch.stack([f[..., :-1].ravel(), f[..., 1:].ravel()]))[0, 1] > 0.8
    assert natural_patches(20, 5, size=16, seed=0).train_x.shape == (20, 3, 16, 16)


@pytest.mark.parametrize("kwargs, match", [
    ({"size": 4}, "at least 8 pixels"),
    ({"n_train": 0}, "at least one training"),
    ({"scales": ()}, "positive integers"),
    ({"scales": (0, 1)}, "positive integers"),
    ({"size": 128, "scales": (1, 4)}, "photographs are only 427 pixels"),
])
def test_natural_patches_reject_bad_requests(kwargs, match):
    with pytest.raises(ValueError, match=match):
        natural_patches(**{"n_train": 10, "n_test": 2, **kwargs})


def _fit(model, data, epochs, lr):
    torch.manual_seed(0)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    x, xt = normalize(data.train_x, data.mean, data.std), normalize(data.test_x, data.mean, data.std)
    for _ in range(epochs):
        perm = torch.randperm(len(x))
        for i in range(0, len(x), 128):
            idx = perm[i : i + 128]
            loss = nn.functional.cross_entropy(model(x[idx]), data.train_y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        return (model.eval()(xt).argmax(1) == data.test_y).float().mean().item()


def test_small_cnn_learns_synthetic_data_a_linear_model_clearly_less():
    data = synthetic_cifar(6000, 2000, resolution=16, seed=0)
    torch.manual_seed(0)
    cnn = nn.Sequential(
        nn.Conv2d(3, 32, 3, padding=1), nn.BatchNorm2d(32), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.BatchNorm2d(32),
        nn.ReLU(), nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 10),
    )
    linear = nn.Sequential(nn.Flatten(), nn.Linear(3 * 16 * 16, 10))
    cnn_acc, linear_acc = _fit(cnn, data, epochs=4, lr=0.05), _fit(linear, data, epochs=4, lr=0.01)
    print(f"test accuracy: small CNN {cnn_acc:.3f}, linear model {linear_acc:.3f}")
    assert cnn_acc >= 0.6, "a small CNN must learn the synthetic data"
    assert cnn_acc < 0.99, "the synthetic task must not be trivial"
    assert cnn_acc - linear_acc >= 0.2, "a linear model must do clearly worse"
    assert linear_acc > 0.15, "colour gives a linear model some signal above chance"


@pytest.mark.parametrize("hflip", [True, False])
def test_augment_matches_per_image_reference(hflip):
    x = torch.randint(0, 255, (6, 3, 8, 8), dtype=torch.uint8)
    gen = torch.Generator().manual_seed(1)
    out = augment(x, gen, pad=2, hflip=hflip)
    gen = torch.Generator().manual_seed(1)  # replay the same draws
    flip = torch.rand(6, generator=gen) < 0.5
    dx, dy = torch.randint(0, 5, (6,), generator=gen), torch.randint(0, 5, (6,), generator=gen)
    for i in range(6):
        img = x[i].flip(-1) if flip[i] and hflip else x[i]
        padded = torch.zeros(3, 12, 12, dtype=torch.uint8)
        padded[:, 2:10, 2:10] = img
        assert torch.equal(out[i], padded[:, dy[i] : dy[i] + 8, dx[i] : dx[i] + 8])


def test_digits_are_scikit_learns_real_digits_in_a_fixed_stratified_split():
    from sklearn.datasets import load_digits

    data, again = digits(), digits()
    assert data.name == "digits-8px" and data.hflip is False and data.train_x.dtype == torch.uint8
    assert data.train_x.shape == (1437, 3, 8, 8) and data.test_x.shape == (360, 3, 8, 8)
    assert torch.equal(data.test_x, again.test_x) and torch.equal(data.train_y, again.train_y)  # the same split every time
    assert 35 <= data.test_y.bincount().min() and data.test_y.bincount().max() <= 37  # stratified: each class in proportion
    assert torch.equal(data.train_x[:, 0], data.train_x[:, 2])  # grey: the three channels are one image
    raw = load_digits()
    pool = {(tuple(np.round(img * 255 / 16).astype(int).ravel()), int(t)) for img, t in zip(raw.images, raw.target)}
    for x, y in zip(data.test_x[:20], data.test_y[:20]):  # every image is one of scikit-learn's, with its label
        assert (tuple(x[0].ravel().tolist()), int(y)) in pool
    assert len(set(map(tuple, data.train_x[:, 0].flatten(1).tolist())) & set(map(tuple, data.test_x[:, 0].flatten(1).tolist()))) <= 5
    mean = data.train_x[:, 0].double().mean().item() / 255
    assert data.mean == (pytest.approx(mean),) * 3
    assert digits(16).train_x.shape == (1437, 3, 16, 16)


def test_every_source_but_cifar10_declares_that_it_stands_in_for_it():
    sources = (synthetic_cifar(n_train=8, n_test=4, resolution=8), natural_patches(size=8, n_train=8, n_test=4), digits(8))
    assert [d.stands_in_for for d in sources] == ["CIFAR-10"] * 3


def test_digits_reject_a_resolution_that_is_not_a_multiple_of_8():
    with pytest.raises(ValueError, match="resolution must be 8, 16, 24"):
        digits(12)


def test_normalize_rejects_float_images():
    with pytest.raises(TypeError, match="expected uint8"):
        normalize(torch.zeros(1, 3, 4, 4), (0, 0, 0), (1, 1, 1))


def test_synthetic_rejects_bad_sizes():
    with pytest.raises(ValueError, match="resolution"):
        synthetic_cifar(resolution=4)
    with pytest.raises(ValueError, match="at least one"):
        synthetic_cifar(n_train=0)


def _fake_cifar10(root: Path, n_per_batch: int = 4) -> Path:
    """The exact on-disk layout of cifar-10-batches-py: pickled dicts, str keys, uint8 N×3072 rows."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({"data": rng.integers(0, 256, (n_per_batch, 3072), dtype=np.uint8),
                         "labels": rng.integers(0, 10, n_per_batch).tolist(), "batch_label": name}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({"label_names": [f"c{i}" for i in range(10)], "num_cases_per_batch": n_per_batch}, fh)
    return folder


@pytest.fixture
def skip_integrity(monkeypatch):
    # tests only: the fake files cannot match torchvision's MD5 sums, so integrity = existence
    import torchvision.datasets.cifar

    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", lambda path, md5=None: Path(path).is_file())


def test_cifar10_loads_from_the_real_on_disk_format(tmp_path, skip_integrity):
    _fake_cifar10(tmp_path)
    data = load_cifar10(tmp_path)
    assert data.name == "cifar10" and data.stands_in_for is None  # the papers' own data
    assert data.train_x.shape == (20, 3, 32, 32) and data.test_x.shape == (4, 3, 32, 32)
    assert data.train_x.dtype == torch.uint8 and data.train_y.dtype == torch.int64
    # channel-first conversion of a row: the first 1024 bytes are the red plane
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as fh:
        row = pickle.load(fh)["data"][0]
    assert torch.equal(data.train_x[0, 0].flatten(), torch.from_numpy(row[:1024].copy()))


def test_cifar10_missing_says_how_to_provide_it(tmp_path):
    with pytest.raises(DataUnavailable, match="--cifar10-root"):
        load_cifar10(None)
    with pytest.raises(DataUnavailable, match="missing or corrupt.*BNCLAIMS_CIFAR10"):
        load_cifar10(tmp_path)


def test_cifar10_corrupt_file_is_reported(tmp_path, skip_integrity):
    folder = _fake_cifar10(tmp_path)
    (folder / "data_batch_3").write_bytes(b"not a pickle")
    with pytest.raises(DataUnavailable, match="could not be read"):
        load_cifar10(tmp_path)


def test_cifar10_root_from_option_or_env(monkeypatch, tmp_path):
    monkeypatch.setenv(CIFAR10_ENV, str(tmp_path))
    assert cifar10_root(None) == tmp_path
    assert cifar10_root("/elsewhere") == Path("/elsewhere")
    monkeypatch.delenv(CIFAR10_ENV)
    assert cifar10_root(None) is None
