"""Digitizing an archive with the command line: a run killed halfway, then resumed, leaves every page done exactly once.

20 rendered pages in two sub-folders plus one file that is not an image go through
`python -m ecg_digitization.digitize scans --out out` with the shipped model. The first run is SIGKILLed once a
few pages are listed in the manifest; `--resume` then finishes the job.
"""
import csv, os, signal, subprocess, sys, time
from collections import Counter
from pathlib import Path
import cv2, numpy as np, pytest
from conftest import ROOT

pytestmark = pytest.mark.slow   # kills and resumes a 20-page archive run (make test runs it; make test-fast skips it)

N = 20


@pytest.fixture(scope="module")
def scans(tmp_path_factory):
    from ecg_digitization.signals import synthesize_ecg
    from ecg_digitization.render import render_ecg
    d = tmp_path_factory.mktemp("archive") / "scans"
    for i in range(N):
        g = np.random.default_rng([11, i])
        img = render_ecg(synthesize_ecg(g), dpi=80, rng=g).image
        f = d / ("ward_a" if i % 2 else "ward_b") / f"page{i:02d}.png"
        f.parent.mkdir(parents=True, exist_ok=True); cv2.imwrite(str(f), cv2.cvtColor(img, cv2.COLOR_RGB2BGR))
    (d / "ward_a" / "broken.png").write_bytes(b"not an image at all")
    return d


def cli(*args, **kw):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONUNBUFFERED": "1"}
    return subprocess.Popen([sys.executable, "-m", "ecg_digitization.digitize", *map(str, args)], env=env, cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def manifest_rows(path):
    if not path.exists(): return []
    with open(path, newline="") as f: return list(csv.DictReader(f))


def test_kill_then_resume_does_every_page_exactly_once(scans):
    out = scans.parent / "out"
    p = cli(scans, "--out", out, start_new_session=True)
    deadline = time.monotonic() + 600
    while len([r for r in manifest_rows(out / "manifest.csv") if r["status"] == "ok"]) < 6:
        assert p.poll() is None, p.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "the first run did not get going"
        time.sleep(0.2)
    os.killpg(p.pid, signal.SIGKILL); p.wait()
    first = manifest_rows(out / "manifest.csv")
    assert 6 <= len([r for r in first if r["status"] == "ok"]) < N, "the kill came too late to test a resume"
    for hea in out.rglob("*.hea"): assert hea.with_suffix(".dat").exists(), f"{hea} without its .dat"

    r = cli(scans, "--out", out, "--resume"); so, se = r.communicate(timeout=900)
    assert r.returncode == 1, se[-2000:]                                   # the broken file failed, nothing else
    assert "Traceback" not in se and f"error: {scans / 'ward_a' / 'broken.png'}: " in se
    assert "failed: " in so and "broken.png" in so.split("failed: ")[1]
    rows = manifest_rows(out / "manifest.csv")
    done = Counter(r["image"] for r in rows if r["status"] in ("ok", "warning"))
    pages = sorted(str(f) for f in scans.rglob("page*.png"))
    assert sorted(done) == pages and set(done.values()) == {1}, done       # every page exactly once
    assert {r["status"] for r in rows if r["image"].endswith("broken.png")} == {"failed"}   # tried by each run, never done
    for f in pages:                                                       # ward folders mirrored under out/
        rel = Path(f).relative_to(scans).with_suffix("")
        assert (out / f"{rel}.hea").exists() and (out / f"{rel}.dat").exists()
    assert len(list(out.rglob("*.hea"))) == N
    assert not [d for d in out.rglob(".tmp-*")], "a partial record folder was left behind"
    ok = [r for r in rows if r["status"] == "ok" and r["note"] != "record found"]
    assert all(r["layout"] and float(r["seconds"]) > 0 and 0 <= float(r["coverage"]) <= 1 for r in ok)
