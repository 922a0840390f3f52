"""`python -m ecg_digitization.digitize SRC --out DIR --executor ray --resume` on a local Ray cluster, finishing a folder
that the single-process command left with one page done: it does only what is left, writes the same records as the
single-process command, byte for byte, and a bad page among good ones fails alone.
"""
import csv, os, shutil, subprocess, sys
from pathlib import Path
import cv2, numpy as np, pytest
from conftest import ROOT

pytestmark = pytest.mark.slow   # a local Ray cluster (make test runs it; make test-fast skips it)

pytest.importorskip("ray.data")


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    from ecg_digitization.signals import synthesize_ecg
    from ecg_digitization.render import render_ecg
    d = tmp_path_factory.mktemp("rayd") / "scans"
    for i in range(4):
        g = np.random.default_rng([21, i])
        f = d / ("a" if i < 2 else "b") / f"p{i}.png"
        f.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(f), cv2.cvtColor(render_ecg(synthesize_ecg(g), dpi=80, rng=g).image, cv2.COLOR_RGB2BGR))
    (d / "b" / "bad.png").write_bytes(b"\x89PNG but not really")
    return d


def digitize(*args):
    "The command in a fresh process with one thread per process (so both executors do the same arithmetic)."
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ecg_digitization.digitize", *map(str, args), "--batch-size", "1"],
                          capture_output=True, text=True, env=env, cwd=ROOT, timeout=900)


def rows(out):
    with open(out / "manifest.csv", newline="") as f: return list(csv.DictReader(f))


def test_ray_executor_resumes_a_local_run_with_the_same_records(scans, tmp_path):
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    r = digitize(scans, "--out", local)
    assert r.returncode == 1 and "bad.png" in r.stdout, r.stderr[-2000:]
    pages = sorted(p.relative_to(scans).with_suffix("") for p in scans.rglob("p*.png"))
    shutil.copytree(local, ray_out)                     # the local run's folder, as if it had been killed after one page
    for rel in pages[1:]: (ray_out / f"{rel}.hea").unlink(); (ray_out / f"{rel}.dat").unlink()

    r = digitize(scans, "--out", ray_out, "--executor", "ray", "--resume")
    assert r.returncode == 1 and "1 already done" in r.stdout, (r.stdout, r.stderr[-3000:])
    assert "Traceback" not in r.stderr and f"error: {scans / 'b' / 'bad.png'}: " in r.stderr
    for rel in pages[1:]:                               # pages in both sub-folders, done by the Ray executor
        for ext in (".hea", ".dat"):
            a, b = (local / f"{rel}{ext}").read_bytes(), (ray_out / f"{rel}{ext}").read_bytes()
            assert a == b, f"{rel}{ext} differs between the executors"
    last = {r["record"]: r for r in rows(ray_out)}      # a record's last row is its latest attempt
    assert last.pop("b/bad")["status"] == "failed" and set(last) == {str(p) for p in pages}
    assert all(r["status"] in ("ok", "warning") for r in last.values()) and all(r["layout"] for r in last.values() if r["status"] == "ok")
