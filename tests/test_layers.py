"""The package's import graph, read from the source (imports inside functions included): no cycles, and imports go
down the pipeline's layers. The layer order is core → signals → render → augment → data → models → vectorize →
metrics → tracking → training → scale / compare / evaluation / CLIs; `KNOWN_UPWARD` lists the imports that still go
the other way, and the test fails both on a new one and on a listed one that is gone (then take it off the list)."""
from __future__ import annotations
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "ecg_digitization"
ORDER = ["core", "signals", "render", "augment", "data", "models", "vectorize", "metrics", "tracking", "training", "top"]
LAYER = {
    "core": "core", "plots": "core",
    "records": "signals", "signal_stats": "signals", "signals": "signals", "errors": "signals",
    "paper": "render", "render": "render",
    "photometric": "augment", "geometry": "augment", "artefacts": "augment", "ink": "augment", "augment": "augment",
    "challenge": "data", "samples": "data", "datasets": "data", "generate": "data", "data": "data",
    "models": "models",
    "grid": "vectorize", "panels": "vectorize", "leads": "vectorize", "trace": "vectorize", "native": "vectorize",
    "refine": "vectorize", "einthoven": "vectorize", "rectify": "vectorize", "level": "vectorize", "vectorize": "vectorize",
    "metrics": "metrics", "metrics_aligned": "metrics",
    "tracking_store": "tracking", "tracking_sync": "tracking", "tracking_run": "tracking", "tracking": "tracking",
    "config": "training", "training": "training", "tune_runs": "training",
    # scale (Ray), compare, evaluation and the command-line modules sit on top, side by side
    "ray_cluster": "top", "ray_config": "top", "ddp": "top", "train_ray": "top", "tune_ray": "top", "ray_resume": "top",
    "compare_runs": "top", "compare_tables": "top", "compare_plots": "top", "compare_examples": "top",
    "compare_views": "top", "compare_status": "top", "compare": "top", "oracle": "top",
    "train": "top", "digitize": "top", "digitize_ray": "top", "archive": "top", "utils": "top",
}
# imports that still run against the order (module -> module it imports); to be removed, never added to
# (the model reads pages with grid/refine, vectorizes with vectorize, and validates its options with config)
KNOWN_UPWARD = {("models", "config"), ("models", "grid"), ("models", "refine"), ("models", "vectorize")}

def graph()->dict:
    "{module: set of package modules it imports anywhere in its source}."
    mods = {p.stem for p in PKG.glob("*.py") if not p.stem.startswith("_")}
    g = {}
    for m in mods:
        deps = set()
        for node in ast.walk(ast.parse((PKG / f"{m}.py").read_text())):
            if isinstance(node, ast.ImportFrom):
                name = node.module or ""
                if node.level == 1: parts = name.split(".") if name else []
                elif name == "ecg_digitization" or name.startswith("ecg_digitization."): parts = name.split(".")[1:]
                else: continue
                deps |= {parts[0]} if parts else {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                deps |= {a.name.split(".")[1] for a in node.names if a.name.startswith("ecg_digitization.")}
        g[m] = {d for d in deps if d in mods and d != m}
    return g

def cycles(g:dict)->list:
    "Strongly connected components with more than one module (Tarjan)."
    index, low, stack, on, out = {}, {}, [], set(), []
    def visit(v):
        index[v] = low[v] = len(index); stack.append(v); on.add(v)
        for w in sorted(g[v]):
            if w not in index: visit(w); low[v] = min(low[v], low[w])
            elif w in on: low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop(); on.discard(w); comp.append(w)
                if w == v: break
            if len(comp) > 1: out.append(sorted(comp))
    for v in sorted(g):
        if v not in index: visit(v)
    return out

def test_graph_sees_imports_inside_functions():
    g = graph()
    assert "training" in g["digitize"]          # digitize imports resolve_device inside a function
    assert {"trace", "native"} <= g["vectorize"] and "core" in g["grid"]

def test_no_import_cycles():
    assert cycles(graph()) == []

def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

def test_every_module_has_a_layer():
    assert set(graph()) <= set(LAYER), sorted(set(graph()) - set(LAYER))

def test_imports_go_down_the_layers():
    g = graph(); rank = {m: ORDER.index(l) for m, l in LAYER.items()}
    upward = {(m, d) for m, ds in g.items() for d in ds if rank[d] > rank[m]}
    assert upward - KNOWN_UPWARD == set(), f"new imports against the layer order: {sorted(upward - KNOWN_UPWARD)}"
    assert KNOWN_UPWARD - upward == set(), f"fixed, take off KNOWN_UPWARD: {sorted(KNOWN_UPWARD - upward)}"
