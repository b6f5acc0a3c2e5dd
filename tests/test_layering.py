"""The project's layers, checked from the sources' imports (function-level imports included).

Two parts. At the bottom, the claims machinery (``harness.claimkit``): settings, the verdict
vocabulary, decision rules, the claims files and registry, the recorder, the report, the plan and
the pytest plugin. It imports nothing of the batch-norm suite and loads no torch. On top of it, the
batch-norm suite, from the bottom up: foundations (data, norms, accel, device, stats, cache,
checks, settings), models, the training loop, probes, the runs built from them (LR search, the
ResNet lab, VGG and DLN runs, the worker pools) and readouts, and the suite's pytest plugin
(``harness.bn_plugin``); ``fixtures/`` use ``harness/``, and claims use both. A module may import
only from its own layer or below, so a probe never reaches into a plugin and the report never
trains anything; the import graph has no circle; no module of ``harness/`` is over 500 lines.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from harness.sources import REPO, imported_modules, project_modules

# lower number = lower layer; a module's layer is that of its longest matching prefix
LAYERS = {
    # the claims machinery (harness.claimkit): knows no batch norm, no network, no torch
    "harness.claimkit": 0, "harness.claimkit.vocabulary": 0, "harness.claimkit.settings": 0,
    "harness.claimkit.sources": 0, "harness.claimkit.checks": 0, "harness.claimkit.interruptions": 0,
    "harness.claimkit.evidence": 1, "harness.claimkit.claims": 1, "harness.claimkit.loader": 2,
    "harness.claimkit.registry": 3, "harness.claimkit.verdicts": 4, "harness.claimkit.report": 5,
    "harness.claimkit.plan": 6, "harness.claimkit.store": 7, "harness.claimkit.executors": 7, "harness.claimkit.plugin": 7, "harness.claimkit.nightly": 8,
    # the batch-norm suite, on top of the machinery
    "harness.data": 10, "harness.norms": 10, "harness.accel": 10, "harness.device": 10, "harness.stats": 10,
    "harness.cache": 10, "harness.checks": 10, "harness.windows": 10, "harness.sources": 10, "harness.settings": 10,
    "harness.threshold_reads": 10,
    "harness": 10,
    "harness.models": 11,
    "harness.train": 12,
    "harness.probes": 13,
    "harness.lr_search": 14, "harness.resnet_lab": 14, "harness.vgg_runs": 14, "harness.dln": 14, "harness.concurrent": 14,
    "harness.bn_identity": 14, "harness.readouts": 14, "harness.preconditions": 14,
    "harness.training_runs": 15,
    "harness.bn_plugin": 16, "harness.nightly": 16,
    "fixtures": 17,
    "claims": 18,
}
MACHINERY = "harness.claimkit"


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


def test_the_machinery_imports_nothing_of_the_batch_norm_suite():
    """harness.claimkit imports only itself (and third-party packages): what is batch-norm specific
    reaches it through the plugin's hooks or registration from the suite's side."""
    outside = {module: sorted(i for i in project_imports(path) if not _in_machinery(i))
               for module, path in MODULES.items() if _in_machinery(module)}
    assert not {m: i for m, i in outside.items() if i}


def test_importing_the_machinery_loads_no_torch():
    """Every module of harness.claimkit imported in a fresh interpreter: no torch, no batch-norm module."""
    modules = [m for m in MODULES if _in_machinery(m) and not m.endswith("__main__")]
    code = ("import importlib, json, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(json.dumps(sorted(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    loaded = set(json.loads(out.stdout))
    assert "torch" not in loaded and "numpy" in loaded  # numpy: the decision rules' statistics
    assert not {m for m in loaded if m.startswith("harness.") and not _in_machinery(m)}


def test_the_import_graph_has_no_circle():
    """No module reaches itself through imports (function-level ones included)."""
    graph = {m: sorted(project_imports(p) - {m}) for m, p in MODULES.items() if m.startswith("harness")}
    assert _circles(graph) == []


# what a lab does behind its protocol: its run store, the planner, declaring runs, prefetch lists
LAB_INTERNALS = ("store", "planner", "declare", "expect_after_search", "prefetch")


def lab_internals(path: Path) -> list[str]:
    """``line: attribute`` for every use of a lab's internals in a module."""
    tree = ast.parse(path.read_bytes(), str(path))
    return [f"{node.lineno}: .{node.attr}" for node in ast.walk(tree) if isinstance(node, ast.Attribute) and node.attr in LAB_INTERNALS]


def test_claims_ask_labs_for_runs_only_through_their_protocol():
    """A claim module names the runs it reads (``harness.training_runs``, ``vgg_runs(seeds)``,
    ``init_probes.passes``, ``lab.side_by_side(tasks)``) and gets typed records back: how runs are
    declared to --plan, made side by side and served is decided behind that, never in a claim."""
    found = {path.name: lab_internals(path) for path in sorted((REPO / "claims").glob("*.py"))}
    assert not {name: uses for name, uses in found.items() if uses}


def test_only_the_store_talks_to_the_planner():
    """A lab asks its store whether this is a planning pass (``planning``), declares runs
    (``declare``), lists pending ones (``expect``) and marks what follows conditional
    (``conditional_from_here``); the planner behind it is the machinery's, and no module of the
    suite touches it."""
    suite = [p for p in MODULES.values() if not str(p.relative_to(REPO)).startswith("harness/claimkit")]
    found = {}
    for path in suite:
        tree = ast.parse(path.read_bytes(), str(path))
        uses = [n.lineno for n in ast.walk(tree) if isinstance(n, ast.Attribute) and n.attr == "planner"]
        if uses:
            found[str(path.relative_to(REPO))] = uses
    assert found == {}


def test_the_lab_internals_check_sees_a_violation(tmp_path):
    (tmp_path / "test_x.py").write_text("def test_x(lab):\n    lab.store.run({}, None)\n    lab.cache.planner.note()\n")
    assert lab_internals(tmp_path / "test_x.py") == ["2: .store", "3: .planner"]


def _in_machinery(module: str) -> bool:
    return module == MACHINERY or module.startswith(MACHINERY + ".")


def _circles(graph: dict[str, list[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, out, counter = {}, {}, [], set(), [], [0]

    def visit(v: str) -> None:
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, []):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def test_the_circle_finder_finds_one():
    assert _circles({"a": ["b"], "b": ["c"], "c": ["a"], "d": ["a"]}) == [["a", "b", "c"]]
    assert _circles({"a": ["b"], "b": []}) == []


def test_no_harness_module_is_over_500_lines():
    long = {m: n for m, p in MODULES.items() if m.startswith("harness") and (n := len(p.read_text().splitlines())) > 500}
    assert not long, f"split these by responsibility: {long}"


def test_the_checker_sees_a_violation(tmp_path):
    bad = tmp_path / "probe.py"
    bad.write_text("def f():\n    from harness.bn_plugin import configure_executor\n")
    assert project_imports(bad) == {"harness.bn_plugin"} and layer("harness.bn_plugin") > layer("harness.probes.ics")
    with pytest.raises(KeyError, match="in no layer"):
        layer("elsewhere.module")
