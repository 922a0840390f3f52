"""`python -m ecg_digitization.digitize SRC --out DIR --executor ray` on a local Ray cluster: the same records as the
single-process command, byte for byte; a bad page among good ones fails alone; a resumed run does only what is left.
"""
import csv, os, subprocess, sys
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


def test_ray_executor_matches_local_and_resumes(scans, tmp_path):
    local, ray_out = tmp_path / "local", tmp_path / "ray"
    r = digitize(scans, "--out", local)
    assert r.returncode == 1 and "bad.png" in r.stdout, r.stderr[-2000:]
    r = digitize(scans, "--out", ray_out, "--executor", "ray")
    assert r.returncode == 1, r.stderr[-3000:]
    assert "Traceback" not in r.stderr and f"error: {scans / 'b' / 'bad.png'}: " in r.stderr
    pages = sorted(p.relative_to(scans).with_suffix("") for p in scans.rglob("p*.png"))
    for rel in pages:
        for ext in (".hea", ".dat"):
            a, b = (local / f"{rel}{ext}").read_bytes(), (ray_out / f"{rel}{ext}").read_bytes()
            assert a == b, f"{rel}{ext} differs between the executors"
    got = {r["record"]: r["status"] for r in rows(ray_out)}
    assert got.pop("b/bad") == "failed" and set(got) == {str(p) for p in pages}
    assert all(r["layout"] for r in rows(ray_out) if r["status"] == "ok")

    (ray_out / f"{pages[0]}.hea").unlink()                                   # as if a kill came before its header
    r = digitize(scans, "--out", ray_out, "--executor", "ray", "--resume")
    assert r.returncode == 1 and "3 already done" in r.stdout, (r.stdout, r.stderr[-2000:])
    assert (ray_out / f"{pages[0]}.hea").read_bytes() == (local / f"{pages[0]}.hea").read_bytes()
