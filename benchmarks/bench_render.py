"""Speed of `render_ecg` and `augment` on the Challenge page size (200 dpi, letter landscape, 3x4+II: 2200x1700 px).

Targets (20x ecg-image-kit per core: ~1.4 s clean, ~3.7 s with distortions): clean < 70 ms, augmented < 185 ms per
page, single process. `augmented_all_steps` forces every augmentation on at once; `augmented_heavy` is the
`heavy_shading` preset (the heavy-shading evaluation setting). OpenCV runs with 1 thread (per-core figure) and then
with its default thread count. The table gives wall-clock median / p90 / min and the median process CPU time (a
per-core figure that other processes on a busy machine inflate less than wall-clock time).

    python benchmarks/bench_render.py [--n 40] [--out benchmarks/results/render.json]
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing
import cv2
import numpy as np
from ecg_digitization.core import EcgRecord, LEADS, shared_data_dir
from ecg_digitization.render import render_ecg
from ecg_digitization.augment import augment, heavy_shading, AUGMENTATIONS

TARGETS_MS = {"clean": 70.0, "augmented": 185.0}

def load_record()->EcgRecord:
    "HR06000 from the shared data when present, else a deterministic toy record of the same size."
    d = shared_data_dir()
    if d is not None and (d / "records" / "HR06000.hea").exists():
        import wfdb
        w = wfdb.rdrecord(str(d / "records" / "HR06000"))
        return EcgRecord(w.p_signal, w.fs, w.sig_name, "HR06000")
    t = np.arange(5000) / 500
    return EcgRecord(np.stack([np.sin(2 * np.pi * (1 + k / 10) * t) * 0.4 + np.exp(-((t % 0.8 - 0.4) / 0.01) ** 2) for k in range(12)], 1), 500, LEADS, "toy")

def time_ms(fn, n:int)->tuple:
    "Wall-clock and process CPU ms of `fn(i)` for i in range(n), after two warm-up calls."
    fn(0); fn(1)
    wall, cpu = [], []
    for i in range(n):
        t, c = time.perf_counter(), time.process_time(); fn(i)
        wall.append((time.perf_counter() - t) * 1e3); cpu.append((time.process_time() - c) * 1e3)
    return wall, cpu

def run(rec:EcgRecord, n:int)->dict:
    "Median / p90 ms for clean pages, augment alone, render + augment, render + every augmentation, render + heavy preset."
    kw = dict(layout="3x4+II", dpi=200, paper="letter")
    page = render_ecg(rec, **kw)
    everything = {k: True for k in AUGMENTATIONS}
    cases = {
        "clean": lambda i: render_ecg(rec, rng=np.random.default_rng(i), **kw),
        "augment_only": lambda i: augment(page, np.random.default_rng(i), 1.0),
        "augmented": lambda i: augment(render_ecg(rec, rng=np.random.default_rng(i), **kw), np.random.default_rng(i), 1.0),
        "augmented_all_steps": lambda i: augment(render_ecg(rec, rng=np.random.default_rng(i), **kw), np.random.default_rng(i), 1.0, **everything),
        "augmented_heavy": lambda i: heavy_shading(render_ecg(rec, rng=np.random.default_rng(i), **kw), np.random.default_rng(i)),
    }
    res = {}
    for name, fn in cases.items():
        ms, cpu = time_ms(fn, n)
        res[name] = dict(median_ms=statistics.median(ms), p90_ms=float(np.percentile(ms, 90)), min_ms=min(ms),
                         cpu_median_ms=statistics.median(cpu), n=n)
    return res

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=40, help="pages per case")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "render.json"))
    a = ap.parse_args()
    load = os.getloadavg()[0]
    rec = load_record()
    size = render_ecg(rec).image.shape
    default_threads = cv2.getNumThreads()
    results = {}
    for threads in (1, default_threads):
        cv2.setNumThreads(threads)
        results[f"threads={threads}"] = run(rec, a.n)
        if threads == default_threads == 1: break
    cv2.setNumThreads(default_threads)
    print(f"render_ecg / augment on {size[1]}x{size[0]} px pages (200 dpi letter, 3x4+II), record {rec.name}, N={a.n}")
    print(f"load average before: {load:.2f} (other processes inflate wall-clock times; CPU ms is per-process)")
    print(f"{'OpenCV threads':>15} {'case':>20} {'median ms':>10} {'p90 ms':>8} {'min ms':>7} {'CPU ms':>7} {'target ms':>10} {'ok':>4}")
    for th, res in results.items():
        for case, r in res.items():
            tgt = TARGETS_MS.get(case)
            ok = "" if tgt is None else ("yes" if r["median_ms"] < tgt else "NO")
            print(f"{th.split('=')[1]:>15} {case:>20} {r['median_ms']:>10.1f} {r['p90_ms']:>8.1f} {r['min_ms']:>7.1f} {r['cpu_median_ms']:>7.1f} {'' if tgt is None else f'{tgt:.0f}':>10} {ok:>4}")
    out = dict(page_px=list(size), record=rec.name, n=a.n, targets_ms=TARGETS_MS, results=results, load_average_before=load,
               machine=dict(cpu_count=os.cpu_count(), platform=platform.platform(), python=platform.python_version(),
                            opencv=cv2.__version__, numpy=np.__version__))
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=1))
    print(f"wrote {a.out}")

if __name__ == "__main__":
    main()
