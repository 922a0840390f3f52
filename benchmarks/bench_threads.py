"""Threads per process when several processes share the cores: seconds and CPU-seconds per page of the shipped digitizer
with 1 or 2 torch/MKL/OpenCV threads, on an idle machine and beside busy processes.

Why it matters: `make test` runs two test processes at once on 2-core machines. A torch thread that waits at the end
of a parallel region spins while its partner is descheduled, so two threads per process, beside another busy process,
burn CPU the other process needs. The Makefile's `TEST_THREADS` (default 1) follows from this table.

Each setting runs in a fresh process (OMP_NUM_THREADS, MKL_NUM_THREADS, OPENCV_FOR_THREADS_NUM set before torch and
OpenCV load), digitizes one warm-up page, then `--pages` rendered pages (100 dpi, 3x4+II); `--busy` other processes
spin on the CPU meanwhile (0 = idle machine). CPU-seconds are the measuring process's own (user + system).

    python benchmarks/bench_threads.py [--pages 5] [--threads 1 2] [--busy 0 1] [--out benchmarks/results/threads.json]
"""
from __future__ import annotations
import argparse, json, multiprocessing as mp, os, platform, subprocess, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHILD = """
import json, sys, time, numpy as np
from ecg_digitization.signals import synthesize_ecg
from ecg_digitization.render import render_ecg
from ecg_digitization.digitize import Digitizer
n = int(sys.argv[1])
dig = Digitizer.from_uri("default", device="cpu")
pages = [render_ecg(synthesize_ecg(np.random.default_rng([11, i])), dpi=100, rng=np.random.default_rng([11, i])).image for i in range(n + 1)]
dig.digitize(pages[0])                                      # warm-up: model and lazy imports loaded
t, c = time.perf_counter(), time.process_time()
for p in pages[1:]: dig.digitize(p)
print(json.dumps(dict(wall_s=time.perf_counter() - t, cpu_s=time.process_time() - c)))
"""


def spin(stop):
    "A busy process: spins until `stop` is set."
    while not stop.is_set(): pass


def measure(threads:int, busy:int, pages:int)->dict:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads), "OPENCV_FOR_THREADS_NUM": str(threads),
           "PYTHONPATH": str(ROOT)}
    stop = mp.Event(); hogs = [mp.Process(target=spin, args=(stop,), daemon=True) for _ in range(busy)]
    for h in hogs: h.start()
    try:
        r = subprocess.run([sys.executable, "-c", CHILD, str(pages)], env=env, capture_output=True, text=True, timeout=1800)
    finally:
        stop.set()
        for h in hogs: h.join(5)
    if r.returncode != 0: raise SystemExit(f"threads={threads} busy={busy} failed:\n{r.stderr[-2000:]}")
    res = json.loads(r.stdout.strip().splitlines()[-1])
    return dict(threads=threads, busy=busy, pages=pages, s_per_page=res["wall_s"] / pages, cpu_s_per_page=res["cpu_s"] / pages)


def main(argv=None)->int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pages", type=int, default=5, help="timed pages per setting")
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2], help="threads per process to compare")
    ap.add_argument("--busy", type=int, nargs="+", default=[0, 1], help="busy processes beside the measured one")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "threads.json"))
    a = ap.parse_args(argv)
    rows = [measure(t, b, a.pages) for b in a.busy for t in a.threads]
    print(f"\nshipped digitizer, {a.pages} pages of 100 dpi ({platform.machine()}, {os.cpu_count()} CPUs)")
    print(f"{'busy processes':>14} {'threads':>7} {'s/page':>7} {'CPU-s/page':>10}")
    for r in rows: print(f"{r['busy']:14d} {r['threads']:7d} {r['s_per_page']:7.2f} {r['cpu_s_per_page']:10.2f}")
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT).stdout.strip()
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(command="python benchmarks/bench_threads.py " + " ".join(argv if argv is not None else sys.argv[1:]),
                                           commit=commit, date=time.strftime("%Y-%m-%d"), machine=platform.machine(),
                                           cpus=os.cpu_count(), rows=rows), indent=1))
    print(f"wrote {a.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
