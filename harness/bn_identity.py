"""pytest plugin ``-p harness.bn_identity``: batch normalization made the identity.

    pytest claims/ -m fast -p harness.bn_identity

Its records are marked as made under this plugin and go to a report of their own
(``reports/mutation/`` by default); a report folder that holds real records refuses them.

A claim that credits BN with an effect over the unnormalized network must stop holding when BN
does nothing. Under this plugin ``torch.nn.functional.batch_norm`` returns its input unchanged (no
centring, no scaling, no γ or β), in the pytest process and in the suite's worker processes (the
environment variable ``BNCLAIMS_BN_IDENTITY`` carries it to them), so every ``norm="batch"`` model
computes exactly like the unnormalized one. Trained runs go to a fresh temporary model cache: the
shared cache must never serve or receive such a run (its keys carry the mutation too).

The claims this applies to carry ``bn_vs_none: true`` in their YAML; tests/test_bn_identity.py
runs them under this plugin and checks that none holds, not even on what too few seeds suggested.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import torch.nn.functional

# what this plugin changes in the measurements: its runs' records are marked and kept apart from real
# ones (a report of their own, reports/mutation/ by default; harness.claimkit.plugin.options)
BNCLAIMS_MUTATION = "batch normalization is the identity (no centring, no scaling, no γ or β)"
ENV = "BNCLAIMS_BN_IDENTITY"
CACHE_ENV = "BNCLAIMS_BN_IDENTITY_CACHE"  # the temporary cache, shared with xdist workers


def identity_batch_norm(input, running_mean=None, running_var=None, weight=None, bias=None, *args, **kwargs):
    """The input unchanged. γ and β stay in the graph with a zero contribution, so code that
    differentiates with respect to every parameter still finds them (their gradient is 0)."""
    out = input
    for param in (weight, bias):
        if param is not None:
            out = out + 0.0 * param.sum()
    return out


def apply() -> None:
    torch.nn.functional.batch_norm = identity_batch_norm


def apply_if_requested() -> None:
    """For worker processes: patch when the parent ran under this plugin."""
    if os.environ.get(ENV) == "1":
        apply()


_BEFORE = pytest.StashKey[tuple]()


def pytest_configure(config) -> None:
    # what unconfigure puts back: a run inside a longer-lived process (pytester's in-process runs)
    # must not leave BN patched, nor the environment pointing at its cache, for what runs next
    config.stash[_BEFORE] = (torch.nn.functional.batch_norm, {k: os.environ.get(k) for k in (ENV, CACHE_ENV)})
    os.environ[ENV] = "1"
    apply()
    if CACHE_ENV not in os.environ:  # the controller; xdist workers start later and inherit it
        os.environ[CACHE_ENV] = tempfile.mkdtemp(prefix="bnclaims-bn-identity-cache-")
    config.option.cache_dir = os.environ[CACHE_ENV]


def pytest_unconfigure(config) -> None:
    if _BEFORE not in config.stash:
        return
    batch_norm, env = config.stash[_BEFORE]
    torch.nn.functional.batch_norm = batch_norm
    for key, value in env.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value
