"""Dataset generation end to end: the CLI (subprocess, resume), the Ray executor, and the bad-input table."""
import logging, os, shutil, subprocess, sys
from pathlib import Path
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))
from ecg_digitization.core import EcgRecord, LEADS
from ecg_digitization.signals.records import DataError, write_record
from ecg_digitization.signals import synthesize_ecg
from ecg_digitization.render import render_ecg
from ecg_digitization.data.challenge import write_challenge_page, read_challenge_page, challenge_images
from ecg_digitization.data import generate_dataset, SyntheticEcgDataset, WfdbRenderDataset, ChallengeFolderDataset

ENV = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}


def cli(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "ecg_digitization.data", "generate", *map(str, args)], cwd=ROOT,
                          env=ENV, capture_output=True, text=True, timeout=timeout)


def item_files(out):
    "Files that belong to items (everything but the manifest)."
    return sorted(p.name for p in Path(out).iterdir() if p.name != "dataset.json")


# ---------------------------------------------------------------- generation command and resume
@pytest.mark.slow
def test_generate_cli_and_resume(tmp_path):
    out = tmp_path / "pages"
    r = cli("--out", out, "--n", 6, "--seed", 1, "--augment", 0.5, "--workers", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "6 written, 0 already done" in r.stdout
    assert "generate pages" in r.stderr                          # the tqdm bar
    assert len(challenge_images(out)) == 6
    for i in range(6):
        assert {f"{i:06d}.hea", f"{i:06d}.dat", f"{i:06d}-0.png", f"{i:06d}-0_mask.png", f"{i:06d}-0.npz"} <= set(item_files(out))
    assert not [n for n in item_files(out) if n.startswith(".")]
    ref = SyntheticEcgDataset(6, seed=1, augment_strength=0.5).item(4)
    page = read_challenge_page(out / "000004.hea")
    assert np.array_equal(page.image, ref.image) and np.array_equal(page.mask, ref.mask)
    assert np.array_equal(page.traces, ref.traces, equal_nan=True)

    # an interrupted run: item 3 lost its header (written last), item 5 is gone, a temp file lies around
    (out / "000003.hea").unlink()
    for f in out.glob("000005*"): f.unlink()
    (out / ".000005-0.tmp.png").write_bytes(b"half")
    before = (out / "000001-0.png").stat().st_mtime_ns
    r = cli("--out", out, "--n", 6, "--seed", 1, "--augment", 0.5, "--workers", 2)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "2 written, 4 already done" in r.stdout
    assert (out / "000001-0.png").stat().st_mtime_ns == before   # finished items are not redone
    assert np.array_equal(read_challenge_page(out / "000005.hea").image, SyntheticEcgDataset(6, seed=1, augment_strength=0.5).item(5).image)

    r = cli("--out", out, "--n", 6, "--seed", 2)
    assert r.returncode == 2 and "other settings" in r.stderr and "seed: 1 there, 2 now" in r.stderr


# ---------------------------------------------------------------- Ray executor
@pytest.mark.slow
@pytest.mark.timeout(300)   # Ray start + 4 pages; 120 s ran out on 2 cores shared with a training job
def test_generate_ray(tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    monkeypatch.setenv("PYTHONPATH", ENV["PYTHONPATH"])          # local Ray workers inherit it and import the package
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        res = generate_dataset(tmp_path / "ray", 4, seed=7, executor="ray", progress=False)
    finally:
        ray.shutdown()
    assert (res["written"], res["done"]) == (4, 0)
    ref = SyntheticEcgDataset(4, seed=7)
    for i in range(4):
        assert np.array_equal(read_challenge_page(tmp_path / "ray" / f"{i:06d}.hea").image, ref.item(i).image)


# ---------------------------------------------------------------- bad inputs
def _good(folder, name, seed=0, **kw):
    return write_record(synthesize_ecg(np.random.default_rng(seed), **kw), folder / name)


def bad_corrupt_dat(d):
    base = _good(d, "a_bad")
    b = bytearray(Path(f"{base}.dat").read_bytes()); b[2000:2040] = os.urandom(40); Path(f"{base}.dat").write_bytes(bytes(b))
    return "a_bad.dat: samples of lead(s)", "corrupt signal file"

def bad_truncated_dat(d):
    base = _good(d, "a_bad"); Path(f"{base}.dat").write_bytes(Path(f"{base}.dat").read_bytes()[:30000])
    return "a_bad.dat", "truncated signal file: 30000 bytes, header promises 120000"

def bad_truncated_header(d):
    base = _good(d, "a_bad"); h = Path(f"{base}.hea"); h.write_text("\n".join(h.read_text().splitlines()[:6]))
    return "a_bad.hea", "header declares 12 signals but describes 5 (truncated header?)"

def bad_short(d):
    _good(d, "a_bad", duration_s=6.0)
    return "a_bad", "record is 6.00 s long; rendering needs at least 10 s"

def bad_nan(d):
    rec = synthesize_ecg(np.random.default_rng(0)); rec.signal[1000:1100, LEADS.index("aVL")] = np.nan
    write_record(rec, d / "a_bad")
    return "a_bad", "NaN samples in lead(s) aVL"

def bad_unknown_lead(d):
    rec = synthesize_ecg(np.random.default_rng(0))
    write_record(EcgRecord(rec.signal, rec.fs, LEADS[:6] + ("V1", "V2", "V3", "V4", "V5", "X6")), d / "a_bad")
    return "a_bad.hea", "missing standard lead(s) V6; the file has"

def bad_image(d):
    write_challenge_page(render_ecg(synthesize_ecg(np.random.default_rng(0)), dpi=60), d, "a_bad")
    (d / "a_bad-0.png").write_bytes(b"\x89PNG\r\n\x1a\n this is not really a png")
    return "a_bad-0.png", "cannot be decoded as an image"

BAD = {"corrupt .dat": bad_corrupt_dat, "truncated .dat": bad_truncated_dat, "truncated header": bad_truncated_header,
       "short record": bad_short, "NaN samples": bad_nan, "unknown lead": bad_unknown_lead, "non-image PNG": bad_image}


def _folder(tmp_path, make):
    "A source folder with one bad item (sorted first) and one good one; its source kind."
    src = tmp_path / "src"; src.mkdir()
    where, problem = make(src)
    if make is bad_image:
        write_challenge_page(render_ecg(synthesize_ecg(np.random.default_rng(1)), dpi=60), src, "b_good"); kind = "challenge"
    else:
        _good(src, "b_good", seed=1); kind = "wfdb"
    return src, kind, where, problem


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_raise(tmp_path, case):
    src, kind, where, problem = _folder(tmp_path, BAD[case])
    out = tmp_path / "out"
    with pytest.raises(DataError) as e:
        generate_dataset(out, source=kind, path=src, executor="serial", dpi=60, progress=False)
    msg = str(e.value)
    assert where in msg and problem in msg, msg
    assert str(src) in msg                                      # the full path of the bad file
    assert item_files(out) == []                                # no partial output


@pytest.mark.parametrize("case", list(BAD))
def test_bad_input_skip(tmp_path, case, caplog):
    src, kind, where, problem = _folder(tmp_path, BAD[case])
    with caplog.at_level(logging.WARNING):
        res = generate_dataset(tmp_path / "out", source=kind, path=src, executor="serial", dpi=60, on_error="skip", progress=False)
    assert (res["written"], res["skipped"]) == (1, 1)
    assert where in res["skipped_items"][0] and problem in res["skipped_items"][0]
    assert any(where in m and problem in m for m in caplog.messages)      # never silent
    assert not [n for n in item_files(tmp_path / "out") if n.startswith("000000")]
    # the datasets behave the same way: skip to the next good item, and remember why
    ds = (ChallengeFolderDataset(src, on_error="skip", image_height=64, image_width=96) if kind == "challenge"
          else WfdbRenderDataset(src, on_error="skip", dpi=60, image_height=64, image_width=96))
    assert ds[0]["index"] == 1 and problem in ds.skipped[0]


@pytest.mark.slow
def test_bad_input_cli_message(tmp_path):
    src, kind, where, problem = _folder(tmp_path, bad_short)
    r = cli("--out", tmp_path / "out", "--source", kind, "--path", src, "--dpi", 60, "--workers", 2)
    assert r.returncode == 2
    assert f"error: {src / 'a_bad'}: {problem}" in r.stderr
    assert "Traceback" not in r.stderr
    assert not [n for n in item_files(tmp_path / "out") if n.startswith("000000")]
