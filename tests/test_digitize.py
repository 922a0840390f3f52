"""The digitize command: good pages become WFDB records, bad files fail one by one with a clear line, nothing half-written."""
import subprocess, sys
from pathlib import Path
import numpy as np, pytest, cv2, torch, wfdb

from ecg_digitization.models import create_model, model_state
from ecg_digitization.signals import synthesize_ecg, read_record
from ecg_digitization.render import render_ecg
from conftest import digitize_in_process

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("ckpt")
    m = create_model("signalsavants", input_size=(128, 160), decoder_channels=[32, 16, 16, 8, 8])
    torch.save(model_state(m), d / "best_model.pt")
    return d / "best_model.pt"


def make_inputs(folder: Path) -> dict:
    page = render_ecg(synthesize_ecg(np.random.default_rng(0)), dpi=100)
    cv2.imwrite(str(folder / "good.png"), cv2.cvtColor(page.image, cv2.COLOR_RGB2BGR))
    (folder / "notes.png").write_text("this is not an image")
    (folder / "empty.png").write_bytes(b"")
    cv2.imwrite(str(folder / "tiny.png"), np.full((40, 60, 3), 255, np.uint8))
    (folder / "truncated.png").write_bytes((folder / "good.png").read_bytes()[:200])
    return {"good": folder / "good.png", "notes": folder / "notes.png", "empty": folder / "empty.png",
            "tiny": folder / "tiny.png", "truncated": folder / "truncated.png", "missing": folder / "missing.png"}


def run(*args):
    "The real command line in a fresh process (the error cases below run its `main` in this process)."
    return subprocess.run([sys.executable, "-m", "ecg_digitization.digitize", *map(str, args)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_good_page_written_as_wfdb_with_overlay(checkpoint, tmp_path):
    f = make_inputs(tmp_path)
    out = tmp_path / "out"
    r = run(f["good"], "--model", checkpoint, "--out", out, "--fs", 250, "--overlay")
    assert r.returncode == 0, r.stderr
    rec = read_record(out / "good")
    assert rec.fs == 250 and rec.signal.shape == (2500, 12)
    assert wfdb.rdheader(str(out / "good")).sig_name[:3] == ["I", "II", "III"]
    assert (out / "good_overlay.png").stat().st_size > 1000


BAD = {"notes": "not an image", "empty": "empty file", "tiny": "too small", "truncated": "not an image", "missing": "not found"}


@pytest.mark.slow
def test_bad_files_fail_alone(checkpoint, tmp_path):
    f = make_inputs(tmp_path)
    out = tmp_path / "out"
    rc, stdout, stderr = digitize_in_process(*[f[b] for b in BAD], f["good"], "--model", checkpoint, "--out", out)
    assert rc == 1 and "Traceback" not in stderr
    lines = stderr.splitlines()
    for bad, message in BAD.items():
        assert any(str(f[bad]) in l and message in l for l in lines), (bad, stderr)
    assert "digitized 1/6" in stdout and "5 failed" in stdout
    assert sorted(p.name for p in out.iterdir()) == ["good.dat", "good.hea", "manifest.csv"]   # nothing of the bad files, no temp dirs


@pytest.mark.slow
def test_batches_give_the_same_records(checkpoint, tmp_path):
    "--batch-size 2 with 2 finishing processes over good, bad and good files: the bad one fails alone and the records match one page per pass in one process."
    f = make_inputs(tmp_path)
    page2 = render_ecg(synthesize_ecg(np.random.default_rng(1)), dpi=100)
    cv2.imwrite(str(tmp_path / "good2.png"), cv2.cvtColor(page2.image, cv2.COLOR_RGB2BGR))
    files = [f["good"], f["notes"], tmp_path / "good2.png"]
    r2 = run(*files, "--model", checkpoint, "--out", tmp_path / "b2", "--batch-size", 2, "--workers", 2)
    r1 = run(*files, "--model", checkpoint, "--out", tmp_path / "b1", "--batch-size", 1)
    for r in (r1, r2):
        assert r.returncode == 1 and "digitized 2/3" in r.stdout and "notes.png" in r.stderr and "Traceback" not in r.stderr
    for stem in ("good", "good2"):
        np.testing.assert_allclose(read_record(tmp_path / "b2" / stem).signal, read_record(tmp_path / "b1" / stem).signal,
                                   atol=1e-3, equal_nan=True)


@pytest.mark.slow
def test_bad_model_and_usage_errors(tmp_path):
    f = make_inputs(tmp_path)
    rc, _, stderr = digitize_in_process(f["good"], "--model", tmp_path / "nope.pt", "--out", tmp_path / "o")
    assert rc == 2 and "cannot load model" in stderr and "Traceback" not in stderr
    rc, _, stderr = digitize_in_process(f["good"], "--model", tmp_path / "nope.pt", "--out", tmp_path / "o", "--fs", "-5")
    assert rc == 2 and "--fs" in stderr
    assert not (tmp_path / "o").exists()


def test_checkpoint_loads_weights_only(checkpoint):
    st = torch.load(checkpoint, weights_only=True)      # no pickled code needed to read our checkpoints
    assert st["approach"] == "signalsavants"
