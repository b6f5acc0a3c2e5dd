"""The project's layers, checked from the sources' imports (function-level imports included).

From the bottom up: foundations (data, norms, accel, device, stats, evidence, cache, checks,
registry), models, the training loop, probes, the runs built from them (LR search, the ResNet
lab, VGG and DLN runs, the worker pools), verdicts, the report, and the pytest plugin on top;
``fixtures/`` use ``harness/``, and claims use both. A module may import only from its own layer
or below, so a probe never reaches into the plugin and the report never trains anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from harness.sources import imported_modules, project_modules

# lower number = lower layer; a module's layer is that of its longest matching prefix
LAYERS = {
    "harness.data": 0, "harness.norms": 0, "harness.accel": 0, "harness.device": 0, "harness.stats": 0,
    "harness.evidence": 0, "harness.cache": 0, "harness.checks": 0, "harness.registry": 0, "harness.windows": 0,
    "harness.sources": 0, "harness.settings": 0, "harness.interruptions": 0, "harness.threshold_reads": 0,
    "harness": 0,
    "harness.models": 1,
    "harness.train": 2,
    "harness.probes": 3,
    "harness.lr_search": 4, "harness.resnet_lab": 4, "harness.vgg_runs": 4, "harness.dln": 4, "harness.concurrent": 4,
    "harness.bn_identity": 4, "harness.verdicts": 4, "harness.readouts": 4, "harness.preconditions": 4,
    "harness.report": 5, "harness.plan": 5,
    "harness.pytest_plugin": 6, "harness.plugin_config": 6, "harness.nightly": 6,
    "fixtures": 7,
    "claims": 8,
}


def layer(module: str) -> int:
    matches = [p for p in LAYERS if module == p or module.startswith(p + ".")]
    if not matches:
        raise KeyError(f"{module} is in no layer: add it to LAYERS")
    return LAYERS[max(matches, key=len)]


MODULES = project_modules()


def project_imports(path: Path) -> set[str]:
    return imported_modules(ast.parse(path.read_bytes(), str(path)), MODULES)


@pytest.mark.parametrize("module, path", list(MODULES.items()), ids=list(MODULES))
def test_imports_go_down_the_layers(module, path):
    upward = sorted(i for i in project_imports(path) if layer(i) > layer(module))
    assert not upward, f"{module} (layer {layer(module)}) imports from higher layers: {upward}"


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("def f():\n    from harness.pytest_plugin import seed_offset\n")
    assert project_imports(bad) == {"harness.pytest_plugin"} and layer("harness.pytest_plugin") > layer("harness.probes.ics")
    with pytest.raises(KeyError, match="in no layer"):
        layer("elsewhere.module")
