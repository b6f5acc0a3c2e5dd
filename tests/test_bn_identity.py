"""Every claim that credits BN with an effect over no BN must stop holding when BN is the identity.

The claims carry ``bn_vs_none: true`` in their YAML. The end-to-end test runs them at the fast
profile under ``-p harness.bn_identity`` (as a user could) in a fresh process with a throw-away
model cache, and reads the report: each must come out refuted or inconclusive, and an
inconclusive one must not be a "would hold" from too few seeds (it may be one whose lab failed a
precondition: that lab cannot show the claim either way). It runs at the first look only
(``--seed-cap 3``, the whole 5% spent there): a claim that credits BN and still holds with BN as
the identity does so at its first look, and later looks would spend CI's time on claims that are
already not holding.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from harness import bn_identity
from harness.models import resnet_cifar
from harness.claimkit.registry import Registry

ROOT = Path(__file__).parents[1]


def bn_vs_none_claims() -> dict[tuple[str, str | None], object]:
    registry = Registry.load(ROOT / "claims")
    entries = list(registry.claims.values()) + list(registry.cases.values())
    return {(c.id, c.case): c for c in entries if c.extra.get("bn_vs_none") and "fast" in c.profiles}


def test_identity_batch_norm_makes_a_bn_net_compute_like_the_unnormalized_one(monkeypatch):
    monkeypatch.setattr(torch.nn.functional, "batch_norm", bn_identity.identity_batch_norm)
    x = torch.randn(4, 3, 16, 16)
    torch.manual_seed(0)
    bn = resnet_cifar(8, "batch", 4).train()
    torch.manual_seed(0)
    none = resnet_cifar(8, "none", 4).train()
    torch.testing.assert_close(bn(x), none(x))


def test_worker_processes_apply_the_patch_only_when_asked(monkeypatch):
    original = torch.nn.functional.batch_norm
    monkeypatch.setattr(torch.nn.functional, "batch_norm", original)
    monkeypatch.delenv(bn_identity.ENV, raising=False)
    bn_identity.apply_if_requested()
    assert torch.nn.functional.batch_norm is original
    monkeypatch.setenv(bn_identity.ENV, "1")
    bn_identity.apply_if_requested()
    assert torch.nn.functional.batch_norm is bn_identity.identity_batch_norm


def _cases():
    for key in sorted(bn_vs_none_claims(), key=str):
        yield pytest.param(key, id=f"{key[0]}-{key[1]}" if key[1] else key[0])


@pytest.fixture(scope="module")
def identity_records(tmp_path_factory) -> dict:
    """Every bn_vs_none claim at fast, run once under ``-p harness.bn_identity``: (claim, half) → records."""
    claims = bn_vs_none_claims()
    out = tmp_path_factory.mktemp("bn-identity")
    env = {**os.environ, "BNCLAIMS_CACHE": str(out / "unused-cache")}
    for name in (bn_identity.ENV, bn_identity.CACHE_ENV, "BNCLAIMS_SEED_OFFSET"):
        env.pop(name, None)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", "claims", "-m", "fast", "-p", "harness.bn_identity", "-p", "no:cacheprovider",
         "-q", "--seed-cap", "3", "--report-dir", str(out), "-k", " or ".join(sorted({cid for cid, _ in claims}))],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500,
    )
    report = out / "claims.json"
    assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not (out / "unused-cache").exists()  # the plugin's own temporary cache served every run
    records: dict = {}
    for r in json.loads(report.read_text())["records"]:
        records.setdefault((r["claim_id"], _half(r["case"], claims, r["claim_id"])), []).append(r)
    return records


@pytest.mark.parametrize("key", list(_cases()))
def test_claim_stops_holding_when_bn_is_the_identity(identity_records, key):
    records = identity_records.get(key)
    assert records, f"{key} did not run under the BN-identity plugin"
    for r in records:
        assert r["verdict"] in ("refuted", "inconclusive"), (r["case"], r["verdict"], r["summary"] or r["error"])
        unmet = [n for n, p in (r["measured"].get("preconditions") or {}).items() if not p["met"]]
        assert r.get("tentative") != "holds" or unmet, (r["case"], r["summary"])  # a lab that cannot show it may


def _half(case, claims, cid):
    """A record's case is the half (``vgg``) or the half plus a parametrization (``vgg-…``)."""
    if case is None:
        return None
    for c_id, half in claims:
        if c_id == cid and half is not None and (case == half or case.startswith(half + "-")):
            return half
    return None
