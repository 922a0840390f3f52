"""CPU seconds per page for each stage of `digitize`, with the shipped model, on the shared ecg-image-kit pages.

Stages, in order: `read` (decode the file), `preprocess` (page to the model's input tensor), `forward` (the network),
`refine` (page at the refining size, `refine.refine_trace`), then `vectorize` and, inside it, where its time goes:
`page_rotation` (Hough lines, ink spectrum), `corner_spread` (line angles in the 4 corner tiles),
`estimate_homography` (line angles in 20 tiles, where the corners disagree), the rest of levelling
(deskew of map and image), `estimate_grid_pitch`, `_read` (leads, traces, time axis, scales) and the rest. `vectorize` is timed unprofiled; a
second, profiled call splits that time in its own proportions (the profiler's overhead taken out pro rata).
CPU time is the process's (`time.process_time`, all threads), so `forward` on 2 cores counts both; wall-clock seconds
are given per page too. Each page runs once as warm-up, then `--repeat` times.

    python benchmarks/bench_stages.py [--threads N] [--repeat 2] [--out benchmarks/results/stages.json]
"""
from __future__ import annotations
import argparse, cProfile, json, os, platform, pstats, subprocess, sys, time
from pathlib import Path
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))   # run from a checkout without installing
import numpy as np

INSIDE = {"page_rotation": "level.py", "corner_spread": "rectify.py", "estimate_homography": "rectify.py", "level_page": "level.py",
          "estimate_grid_pitch": "grid.py", "_read": "vectorize.py", "vectorize": "vectorize.py"}

def kit_pages()->list:
    from ecg_digitization.core import shared_data_dir
    d = shared_data_dir()
    if d is None: sys.exit("no shared data: set ECGD_DATA to the folder with challenge2024_sample (see tests/conftest.py)")
    return sorted(p for p in d.rglob("*.png") if "challenge2024" in str(p))

def inside(prof:cProfile.Profile)->dict:
    "Cumulative CPU seconds of the functions in INSIDE (process time, as the profiler was built)."
    st = pstats.Stats(prof).stats; out = {}
    for (file, _, fn), (_, _, _, cum, _) in st.items():
        if fn in INSIDE and file.endswith(INSIDE[fn]): out[fn] = out.get(fn, 0.0) + cum
    return out

def one_page(m, f:Path)->tuple:
    "(CPU seconds per stage, wall-clock seconds of the unprofiled stages) of one page."
    import cv2, torch
    from ecg_digitization.digitize import read_image
    from ecg_digitization.vectorize.refine import refine_trace
    from ecg_digitization.vectorize import vectorize
    cpu, w0 = {}, time.perf_counter()
    def tick(name, fn):
        c = time.process_time(); r = fn(); cpu[name] = time.process_time() - c; return r
    img = tick("read", lambda: read_image(f))
    x = tick("preprocess", lambda: m.preprocess(img))
    with torch.no_grad(): prob = tick("forward", lambda: m.probabilities(m(x))[0])
    def page():
        p = m.page_rgb(img); s = min(1.0, m.refine_max_side / max(p.shape[:2]))
        return cv2.resize(p, None, fx=s, fy=s, interpolation=cv2.INTER_AREA) if s < 1 else p
    pg = tick("page at refining size", page)
    t = tick("refine", lambda: refine_trace(prob, pg))
    tick("vectorize", lambda: vectorize(t, pg, layout=m.layout, fs=m.fs, duration_s=m.duration_s)); wall = time.perf_counter() - w0
    prof = cProfile.Profile(time.process_time); prof.enable()           # a second call, profiled, splits that time
    vectorize(t, pg, layout=m.layout, fs=m.fs, duration_s=m.duration_s)
    prof.disable(); inn = inside(prof); k = cpu["vectorize"] / max(inn.get("vectorize", 0.0), 1e-9)
    inn = {f: v * k for f, v in inn.items()}                             # the profiler's own cost taken out pro rata
    cpu["  page_rotation"] = inn.get("page_rotation", 0.0)
    cpu["  corner_spread"] = inn.get("corner_spread", 0.0)
    cpu["  estimate_homography"] = inn.get("estimate_homography", 0.0)
    cpu["  deskew (rest of levelling)"] = (inn.get("level_page", 0.0) - cpu["  page_rotation"] - cpu["  corner_spread"]
                                           - cpu["  estimate_homography"])
    cpu["  estimate_grid_pitch"] = inn.get("estimate_grid_pitch", 0.0)
    cpu["  _read (leads, traces, scales)"] = inn.get("_read", 0.0)
    cpu["  rest"] = cpu["vectorize"] - sum(v for k, v in cpu.items() if k.startswith("  ") and k != "  rest")
    return cpu, wall

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--repeat", type=int, default=2, help="timed passes over the pages after the warm-up pass")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "stages.json"))
    a = ap.parse_args()
    import torch
    from ecg_digitization.digitize import Digitizer
    if a.threads: torch.set_num_threads(a.threads)
    m = Digitizer.from_uri("default", "cpu").model
    pages = kit_pages()
    for f in pages: one_page(m, f)                                  # warm-up
    runs = [one_page(m, f) for _ in range(a.repeat) for f in pages]
    stages = list(runs[0][0])
    table = {s: float(np.mean([r[0][s] for r in runs])) for s in stages}
    end_to_end = sum(v for k, v in table.items() if not k.startswith("  "))
    print(f"{len(pages)} ecg-image-kit pages x {a.repeat}, torch threads {torch.get_num_threads()}, {os.cpu_count()} CPUs")
    print(f"{'stage':36s} {'CPU s/page':>10s}")
    for s, v in table.items(): print(f"{s:36s} {v:10.3f}")
    print(f"{'digitize, all stages':36s} {end_to_end:10.3f}")
    wall = float(np.median([r[1] for r in runs]))
    print(f"{'wall-clock s/page (median)':36s} {wall:10.3f}")
    try: commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent).stdout.strip()
    except OSError: commit = ""
    res = dict(benchmark="stages", commit=commit, date=time.strftime("%Y-%m-%d"), machine=platform.platform(), cpus=os.cpu_count(),
               load_avg_1m=os.getloadavg()[0], torch_threads=torch.get_num_threads(), pages=len(pages), repeat=a.repeat,
               cpu_s_per_page=table, cpu_s_per_page_total=end_to_end, wall_s_per_page_median=wall)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True); Path(a.out).write_text(json.dumps(res, indent=1))
    print(f"wrote {a.out}")

if __name__ == "__main__":
    main()
