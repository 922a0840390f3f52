"""The package's import graph, read from the source (imports inside functions included): no cycles, and imports go
down the pipeline's layers. The layer order is core → signals → render → augment → data → models → vectorize →
metrics → tracking → training → scale / compare / evaluation / CLIs; `KNOWN_UPWARD` lists the imports that still go
the other way, and the test fails both on a new one and on a listed one that is gone (then take it off the list)."""
from __future__ import annotations
import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "ecg_digitization"
ORDER = ["core", "signals", "render", "augment", "data", "models", "vectorize", "metrics", "tracking", "training", "top"]
# a module's layer is its subpackage's; the top-level modules are listed here
TOP_LEVEL = {"core": "core", "plots": "core", "utils": "top", "train": "top", "train_ray": "top", "digitize": "top"}
SIDE_BY_SIDE = {"scale", "compare", "evaluation"}   # on top, next to the command-line modules
# imports that still run against the order (module -> module it imports); to be removed, never added to
# (the model reads pages with grid/refine and vectorizes with vectorize)
KNOWN_UPWARD = {("models.digitizer", "vectorize.grid"), ("models.digitizer", "vectorize"),
                ("models.segmenter", "vectorize.refine"), ("models.segmenter", "vectorize")}

def modules()->dict:
    "{dotted module name: file} for the package, `__init__` files named after their package."
    out = {}
    for p in PKG.rglob("*.py"):
        rel = p.relative_to(PKG).with_suffix("").parts
        if rel[-1] == "__init__": rel = rel[:-1]
        if not rel or rel[0].startswith("_"): continue
        out[".".join(rel)] = p
    return out

def layer(m:str)->str:
    head = m.split(".")[0]
    return TOP_LEVEL.get(head) or ("top" if head in SIDE_BY_SIDE else head)

def graph()->dict:
    "{module: set of package modules it imports anywhere in its source}."
    mods = modules(); g = {}
    for m, path in mods.items():
        pkg = m if path.name == "__init__.py" else m.rpartition(".")[0]
        deps = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = pkg.split(".") if pkg else []
                    base = base[:len(base) - (node.level - 1)] if node.level > 1 else base
                    target = ".".join(base + ([node.module] if node.module else []))
                elif (node.module or "").startswith("ecg_digitization"): target = node.module.partition(".")[2]
                else: continue
                subs = {f"{target}.{a.name}".lstrip(".") for a in node.names} & set(mods)
                deps |= subs or {target}
            elif isinstance(node, ast.Import):
                deps |= {a.name.partition(".")[2] for a in node.names if a.name.startswith("ecg_digitization.")}
        found = set()
        for d in deps:          # the module itself, else the closest package above it
            while d and d not in mods: d = d.rpartition(".")[0]
            while d:            # importing a.b runs a/__init__ first: unless m sits inside a, it depends on a too
                if d in mods and not (m + ".").startswith(d + "."): found.add(d)
                d = d.rpartition(".")[0]
        g[m] = {d for d in found if d != m}
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
    assert {"vectorize.trace", "vectorize.native"} <= g["vectorize"] and "core" in g["vectorize.grid"]
    assert "signals.records" in g["signals"] and "scale" in g["digitize"]
    assert {"training", "training.config"} <= g["scale.train"]      # importing training.config runs training/__init__

def test_no_import_cycles():
    assert cycles(graph()) == []

def test_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]

def test_every_module_has_a_layer():
    assert {m for m in graph() if layer(m) not in ORDER} == set()

def test_the_package_shows_the_pipeline():
    "A newcomer listing ecg_digitization/ sees the pipeline's stages as folders."
    folders = {p.name for p in PKG.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert set(ORDER[1:-1]) - {"core"} <= folders and SIDE_BY_SIDE <= folders

def test_imports_go_down_the_layers():
    g = graph(); rank = {m: ORDER.index(layer(m)) for m in g}
    upward = {(m, d) for m, ds in g.items() for d in ds if rank[d] > rank[m]}
    assert upward - KNOWN_UPWARD == set(), f"new imports against the layer order: {sorted(upward - KNOWN_UPWARD)}"
    assert KNOWN_UPWARD - upward == set(), f"fixed, take off KNOWN_UPWARD: {sorted(KNOWN_UPWARD - upward)}"
