"""Property-based bad-input tests (hypothesis): random corrupt images through `read_image` and the digitize CLI,
randomly mutated WFDB headers and page annotations through `read_record` and the datasets, wrong-typed config
overrides, odd signal shapes through `EcgRecord` and the SNR metric. Each property says: a clear error of the
documented type naming the file or key, or a valid result; never a stray IndexError/cv2.error, never partial output.
The fixed tables in test_data.py / test_digitize.py stay the readable examples; these search around them.

Runs are deterministic (`derandomize`); `ECGD_PROPERTY_EXPLORE=1` searches 20x more examples at random.
Tests marked `xfail(strict=True)` pin bugs in notebooks another session was editing; each reason names the fix.
Once fixed they XPASS, which fails the run: then drop the marker."""
import contextlib, dataclasses, json, os, shutil, struct, tempfile, typing, zlib
from pathlib import Path
import numpy as np, pytest, cv2, torch
from hypothesis import HealthCheck, Phase, assume, given, settings, strategies as st
from omegaconf import OmegaConf

from ecg_digitization.core import EcgRecord, LEADS
from ecg_digitization.signals.records import DataError, read_record, write_record
from ecg_digitization.data.challenge import read_challenge_page, write_challenge_page
from ecg_digitization.data import ChallengeFolderDataset, WfdbRenderDataset
from ecg_digitization.digitize import ImageError, MAX_PIXELS, MIN_SIDE_PX, read_image
from ecg_digitization.training.config import Config, ConfigError, compose_config
from ecg_digitization.metrics import challenge_snr, snr_per_lead
from ecg_digitization.metrics.aligned import SNR_CAP_DB, aligned_snr, aligned_snr_per_lead
from ecg_digitization.models import create_model, model_state
from ecg_digitization.signals import synthesize_ecg
from ecg_digitization.render import render_ecg
from conftest import digitize_in_process

EXPLORE = os.environ.get("ECGD_PROPERTY_EXPLORE") == "1"

def props(n:int, shrink:bool=True):
    "Hypothesis settings: `n` examples (x20 when exploring), no deadline, no example database in the repo; xfail tests skip shrinking."
    return settings(max_examples=n * (20 if EXPLORE else 1), deadline=None, derandomize=not EXPLORE, database=None, report_multiple_bugs=False,
                    phases=[Phase.explicit, Phase.reuse, Phase.generate] + ([Phase.shrink] if shrink else []),
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])

@contextlib.contextmanager
def tmpdir():
    "A fresh folder per example (pytest's tmp_path is shared by all examples of one test)."
    with tempfile.TemporaryDirectory(prefix="ecgd_prop_") as d: yield Path(d)

class Fixture(tuple):
    "A fixture value hypothesis need not print in full (it reprs every argument of a failing example)."
    def __repr__(self): return f"<{len(self)} fixture values>"

def one_line_naming(err:Exception, where) -> str:
    msg = str(err)
    assert str(where) in msg, f"{type(err).__name__} does not name {where}: {msg}"
    assert "\n" not in msg.strip(), f"multi-line message: {msg!r}"
    return msg


# ---------------------------------------------------------------- image bytes
def _encode(img:np.ndarray, ext:str) -> bytes:
    ok, b = cv2.imencode(ext, img); assert ok; return b.tobytes()

def png_header(w:int, h:int, idat:bytes=b"") -> bytes:
    "A PNG whose IHDR declares w x h RGB pixels (CRCs valid), with `idat` as its only data."
    def chunk(t, d): return struct.pack(">I", len(d)) + t + d + struct.pack(">I", zlib.crc32(t + d) & 0xFFFFFFFF)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")

def bmp_header(w:int, h:int) -> bytes:
    "A 2x2 BMP whose header is patched to declare w x h pixels."
    b = bytearray(_encode(np.zeros((2, 2, 3), np.uint8), ".bmp")); b[18:26] = struct.pack("<ii", w, h); return bytes(b)

@pytest.fixture(scope="module")
def page_png():
    "A real rendered page (850 x 1100 px) as PNG and JPEG bytes."
    img = cv2.cvtColor(render_ecg(synthesize_ecg(np.random.default_rng(0)), dpi=100).image, cv2.COLOR_RGB2BGR)
    return Fixture([_encode(img, ".png"), _encode(img, ".jpg")])

MAGICS = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0", b"BM", b"II*\x00", b"MM\x00*", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP", b"P6\n", b"%PDF-1.4\n"]

@st.composite
def unusable_image(draw, page):
    "(bytes, kind) of a file `read_image` must refuse or read as a full page: junk, truncations, small or blank-declared images."
    kind = draw(st.sampled_from(["junk", "truncated", "small", "declared"]))
    if kind == "junk":
        return draw(st.sampled_from(MAGICS)) + draw(st.binary(max_size=600)), kind
    if kind == "truncated":
        src = page[draw(st.integers(0, 1))]
        return src[:draw(st.integers(0, len(src) - 1))], kind
    if kind == "small":       # sides from 8 px (test_read_image_tiny_and_huge_headers: smaller) up to under MIN_SIDE_PX
        h, w = draw(st.integers(8, MIN_SIDE_PX - 1)), draw(st.integers(8, 3 * MIN_SIDE_PX))
        if draw(st.booleans()): h, w = w, h
        shape = (h, w) + draw(st.sampled_from([(), (3,), (4,)]))
        ext = draw(st.sampled_from([".png", ".jpg", ".bmp", ".tiff"] if len(shape) < 3 or shape[2] == 3 else [".png", ".tiff"]))
        return _encode(np.full(shape, draw(st.integers(0, 255)), np.uint8), ext), kind
    side = draw(st.integers(9000, 30000))    # over MAX_PIXELS, under OpenCV's own 2^30 px limit; no pixel data
    return png_header(side, draw(st.integers(9000, 30000))), kind

@given(data=st.data())
@props(50)
def test_read_image_refuses_clearly(page_png, data):
    blob, kind = data.draw(unusable_image(page_png))
    with tmpdir() as d:
        f = d / "page.png"; f.write_bytes(blob)
        try: img = read_image(f)
        except ImageError as e:
            msg = one_line_naming(e, f)
            if kind == "small": assert "too small" in msg
        else:   # some decoders fill a truncated file with grey: then it must be a whole, sane page
            assert kind == "truncated", kind
            assert img.dtype == np.uint8 and img.ndim == 3 and img.shape[2] == 3
            assert min(img.shape[:2]) >= MIN_SIDE_PX and img.shape[0] * img.shape[1] <= MAX_PIXELS


@st.composite
def tiny_or_huge(draw):
    "Image files OpenCV's reduced decode or size guard throws cv2.error on: a side under 8 px, or a header over 2^30 px."
    if draw(st.booleans()):
        h, w = draw(st.integers(1, 7)), draw(st.integers(1, 900))
        if draw(st.booleans()): h, w = w, h
        return _encode(np.full((h, w, 3), 255, np.uint8), draw(st.sampled_from([".png", ".bmp", ".tiff"])))
    w, h = draw(st.integers(33000, 2**31 - 1)), draw(st.integers(33000, 2**31 - 1))
    return draw(st.sampled_from([png_header(w, h), bmp_header(w, h), f"P6\n{w} {h}\n255\n".encode() + b"\0" * 32]))

@given(blob=tiny_or_huge())
@props(25, shrink=False)
def test_read_image_tiny_and_huge_headers(blob):
    with tmpdir() as d:
        f = d / "page.png"; f.write_bytes(blob)
        with pytest.raises(ImageError) as e: read_image(f)
        one_line_naming(e.value, f)


# ---------------------------------------------------------------- the digitize command
@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    "An untrained tiny signalsavants checkpoint, as test_digitize.py uses."
    d = tmp_path_factory.mktemp("ckpt")
    torch.save(model_state(create_model("signalsavants", input_size=(128, 160), decoder_channels=[32, 16, 16, 8, 8])), d / "m.pt")
    return d / "m.pt"


@pytest.mark.slow
@given(data=st.data())
@props(20)
def test_cli_bad_files_fail_alone(page_png, checkpoint, data):
    blobs = data.draw(st.lists(unusable_image(page_png), min_size=1, max_size=3))
    good_at = data.draw(st.integers(0, len(blobs)))
    with tmpdir() as d:
        bad = []
        for i, (blob, kind) in enumerate(blobs):
            f = d / f"bad{i}{data.draw(st.sampled_from(['.png', '.jpg', '.tif', '']))}"; f.write_bytes(blob); bad.append(f)
        (d / "good.png").write_bytes(page_png[0])
        files = bad[:good_at] + [d / "good.png"] + bad[good_at:]
        rc, out, err = digitize_in_process(*files, "--model", checkpoint, "--out", d / "out")
        assert "Traceback" not in err
        failed = [f for f in bad if f"error: {f}: " in err]          # one line, the ImageError's problem after the file
        read_ok = len(bad) - len(failed)                 # a truncated JPEG may still decode as a (grey-filled) page
        assert all(f in failed or blobs[i][1] == "truncated" for i, f in enumerate(bad)), err
        assert rc == (1 if failed else 0) and f"digitized {1 + read_ok}/{len(files)}" in out, (out, err)
        written = sorted(p.name for p in (d / "out").iterdir())
        assert {"good.hea", "good.dat", "manifest.csv"} <= set(written) and len(written) == 1 + 2 * (1 + read_ok), written  # no .tmp-*, no lone .hea
        assert not any(n.startswith(tuple(f.stem for f in failed)) for n in written), written

@given(fs=st.sampled_from(["nan", "inf", "-nan", "Infinity"]))
@props(4, shrink=False)
def test_cli_non_finite_fs_is_a_usage_error(page_png, checkpoint, fs):
    with tmpdir() as d:
        (d / "good.png").write_bytes(page_png[0])
        rc, out, err = digitize_in_process(d / "good.png", "--model", checkpoint, "--out", d / "out", "--fs", fs)
        assert rc == 2 and "--fs" in err and not (d / "out").exists()

@given(exts=st.tuples(st.sampled_from([".png", ".PNG", ".jpg"]), st.sampled_from([".png", ".jpeg"])))
@props(3, shrink=False)
def test_cli_same_stem_twice_is_refused(page_png, checkpoint, exts):
    with tmpdir() as d:
        (d / "a").mkdir(); (d / "b").mkdir()
        files = [d / "a" / f"x{exts[0]}", d / "b" / f"x{exts[1]}"]
        for f in files: f.write_bytes(page_png[0])
        rc, out, err = digitize_in_process(*files, "--model", checkpoint, "--out", d / "out")
        assert rc == 2 and "x" in err and not (d / "out").exists()


# ---------------------------------------------------------------- WFDB headers
@pytest.fixture(scope="module")
def good_record(tmp_path_factory):
    "A valid 10 s 12-lead record: (header lines, .dat bytes)."
    base = write_record(synthesize_ecg(np.random.default_rng(0)), tmp_path_factory.mktemp("rec") / "a")
    return Fixture([Path(f"{base}.hea").read_text().splitlines(), Path(f"{base}.dat").read_bytes()])

TOKENS = st.one_of(st.sampled_from(["", "abc", "-1", "0", "nan", "inf", "1e309", "1e3", "999999999999", "3.5", "/", "(", ")",
                                    "#", "b.dat", "16", "212", "99", "mV", "uV", "1000.0(0)/mV", "(0)", "1:2", "V7", "avr"]),
                   st.text(st.characters(exclude_characters="\r\n", exclude_categories=("Cs",)), max_size=6))

@st.composite
def mutated_header(draw, lines):
    "The header text after 1-3 random edits: token replaced, dropped or added; line dropped, doubled or cut short."
    lines = list(lines)
    for _ in range(draw(st.integers(1, 3))):
        i = draw(st.integers(0, len(lines) - 1)); toks = lines[i].split(" ")
        op = draw(st.sampled_from(["replace", "replace", "drop_token", "add_token", "drop_line", "dup_line", "cut"]))
        if op == "replace": toks[draw(st.integers(0, len(toks) - 1))] = draw(TOKENS)
        elif op == "drop_token": del toks[draw(st.integers(0, len(toks) - 1))]
        elif op == "add_token": toks.insert(draw(st.integers(0, len(toks))), draw(TOKENS))
        elif op == "cut": lines = lines[:i] + [lines[i][:draw(st.integers(0, len(lines[i])))]]; continue
        elif op == "drop_line" and len(lines) > 1: del lines[i]; continue
        elif op == "dup_line": lines.insert(i, lines[i]); continue
        lines[i] = " ".join(toks)
    return "\n".join(lines) + "\n"

def write_record_files(folder:Path, header:str, dat:bytes):
    "folder/a.hea with `header` and folder/a.dat with `dat`."
    (folder / "a.hea").write_text(header); (folder / "a.dat").write_bytes(dat)

def check_read(folder:Path):
    "read_record on folder/a: a sane 12-lead record, or a one-line DataError naming a file in `folder`."
    try: rec = read_record(folder / "a")
    except DataError as e: return one_line_naming(e, folder)
    assert rec.leads == LEADS and rec.signal.shape[1] == 12 and np.isfinite(rec.fs) and rec.fs > 0
    return rec

@contextlib.contextmanager
def mutated_record_dir(good_record, data):
    "A scratch folder holding record `a`: the good record's signal file under a header that hypothesis mutated."
    lines, dat = good_record
    with tmpdir() as d:
        write_record_files(d, data.draw(mutated_header(lines)), dat)
        yield d

@given(data=st.data())
@props(50)
def test_mutated_header_reads_or_fails_clearly(good_record, data):
    with mutated_record_dir(good_record, data) as d: check_read(d)

@given(fs=st.one_of(TOKENS, st.floats().map(repr), st.integers(-10**13, 10**13).map(str)))
@props(40)
def test_header_fs_read_as_written_or_refused(good_record, fs):
    "wfdb alone reads fs '1e3' as 1 Hz and 'nan' or '-500' as 250 Hz; we must read what is written or refuse."
    assume(fs.split() == [fs] and "#" not in fs)       # one token on the record line
    lines, dat = good_record
    with tmpdir() as d:
        write_record_files(d, "\n".join([f"a 12 {fs} 5000", *lines[1:]]) + "\n", dat)
        rec = check_read(d)
        if isinstance(rec, str): return
        try: written = float(fs.split("/")[0].split("(")[0])
        except ValueError: pytest.fail(f"fs field {fs!r} was read as {rec.fs} Hz")
        assert rec.fs == pytest.approx(written), (fs, rec.fs)

@given(n_sig=st.integers(-3, 40).filter(lambda n: n != 12), drop=st.sets(st.integers(1, 12), max_size=3))
@props(30)
def test_wrong_lead_count(good_record, n_sig, drop):
    lines, dat = good_record
    with tmpdir() as d:
        body = [l for i, l in enumerate(lines[1:], 1) if i not in drop]
        write_record_files(d, "\n".join([f"a {n_sig} 500 5000", *body]) + "\n", dat)
        got = check_read(d)
        limb_only = n_sig == 12 - len(drop) and drop <= {3, 4, 5, 6}   # a valid header without III/aVR/aVL/aVF: derived
        assert isinstance(got, str) or limb_only, "a header with a wrong signal count was read as fine"

@given(name=st.sampled_from(["a.dat", "b.dat", "sub/a.dat", "a.DAT"]), size=st.integers(0, 120000))
@props(20)
def test_missing_or_short_signal_file(good_record, name, size):
    lines, dat = good_record
    with tmpdir() as d:
        (d / "a.hea").write_text("\n".join([lines[0], *[l.replace("a.dat", name, 1) for l in lines[1:]]]) + "\n")
        (d / "a.dat").write_bytes(dat[:size])
        if name == "a.dat" and size == len(dat): return
        msg = check_read(d)
        assert isinstance(msg, str) and any(w in msg for w in ("missing", "truncated", "unreadable WFDB header")), msg

@given(data=st.data())
@props(15)
def test_wfdb_dataset_with_mutated_header(good_record, data):
    with mutated_record_dir(good_record, data) as d:
        try: fs = read_record(d / "a").fs
        except DataError: fs = 500
        assume(100 <= fs <= 10000)   # see test_wfdb_dataset_short_record_at_huge_fs and the report for other rates
        ds = WfdbRenderDataset(d, dpi=60, image_height=64, image_width=96)
        try: item = ds[0]
        except DataError as e: one_line_naming(e, d)
        else: assert tuple(item["image"].shape[-2:]) == (64, 96)

@given(fs=st.sampled_from(["1e7", "10000000", "123456789"]))
@props(3, shrink=False)
def test_wfdb_dataset_short_record_at_huge_fs(good_record, fs):
    lines, dat = good_record
    with tmpdir() as d:
        (d / "a.hea").write_text("\n".join([lines[0].replace(" 500 ", f" {int(float(fs))} "), *lines[1:]]) + "\n")
        (d / "a.dat").write_bytes(dat)
        with pytest.raises(DataError, match="long"): WfdbRenderDataset(d, dpi=60, image_height=64, image_width=96)[0]


# ---------------------------------------------------------------- Challenge pages: annotations, masks, ground truth
@pytest.fixture(scope="module")
def good_page(tmp_path_factory):
    "A written Challenge page folder (png, mask, npz, hea, dat) and a valid ecg-image-kit style JSON for it."
    d = tmp_path_factory.mktemp("page")
    r = render_ecg(synthesize_ecg(np.random.default_rng(0)), dpi=60)
    write_challenge_page(r, d, "p")
    y = float(r.image.shape[0] / 2)
    pts = [[y, 10 + 0.5 * i] for i in range(100)]
    js = {"x_grid": 11.8, "resolution": 60, "sampling_frequency": 500, "number_of_columns_in_image": 4, "full_mode_lead": "II",
          "leads": [{"lead_name": "I", "start_sample": 0, "end_sample": 100, "plotted_pixels": pts,
                     "lead_bounding_box": {"0": [1, 2], "1": [3, 4]}},
                    {"lead_name": "II", "start_sample": 100, "end_sample": 200, "plotted_pixels": str(pts)}]}
    return Fixture([d, js])

JSON_VALUES = st.recursive(st.none() | st.booleans() | st.integers(-10**12, 10**12) | st.floats() | st.text(max_size=8)
                           | st.sampled_from(["I", "avr", "X", "[[1, 2]]", "[[1, 2", "{'a': [1, 2]}"]),
                           lambda v: st.lists(v, max_size=3) | st.dictionaries(st.text(max_size=4), v, max_size=3), max_leaves=6)

@st.composite
def broken_page(draw, js):
    "(file name, new bytes or None to delete, whether the JSON replaces the npz) for one damaged ground-truth file."
    what = draw(st.sampled_from(["npz", "mask", "json", "json"]))
    if what == "json":
        j = json.loads(json.dumps(js))
        for _ in range(draw(st.integers(1, 3))):
            leads = [x for x in j.get("leads", []) if isinstance(x, dict)] if isinstance(j.get("leads"), list) else []
            tgt = draw(st.sampled_from([j, *leads]))
            key = draw(st.sampled_from(sorted(tgt))) if tgt else "leads"
            if draw(st.integers(0, 4)) == 0: tgt.pop(key, None)
            else: tgt[key] = draw(JSON_VALUES)
        text = json.dumps(j) if draw(st.integers(0, 5)) else json.dumps(j)[:draw(st.integers(0, 40))]
        return "p-0.json", text.encode(), True
    if what == "mask":
        h, w = draw(st.integers(1, 60)), draw(st.integers(1, 60))
        blob = draw(st.sampled_from([_encode(np.zeros((h, w), np.uint8), ".png"), b"", None, bmp_header(10**5, 10**5)]))
        return "p-0_mask.png", blob, False
    return "p-0.npz", None, False       # bytes filled in by the test from the good file

@given(data=st.data())
@props(40)
def test_damaged_ground_truth_fails_clearly(good_page, data):
    src, js = good_page
    name, blob, json_instead = data.draw(broken_page(js))
    with tmpdir() as d:
        shutil.copytree(src, d, dirs_exist_ok=True)
        if json_instead: (d / "p-0.npz").unlink()
        if name == "p-0.npz":
            b = (d / name).read_bytes(); cut = data.draw(st.integers(0, len(b) - 1))
            blob = b[:cut] if data.draw(st.booleans()) else b[:cut] + data.draw(st.binary(min_size=1, max_size=64)) + b[cut + 64:]
        if blob is None: (d / name).unlink()
        else: (d / name).write_bytes(blob)
        try: page = read_challenge_page(d / "p.hea")
        except DataError as e: one_line_naming(e, d)
        else: assert page.mask.shape == page.image.shape[:2] and page.traces.shape[0] == 12
        ds = ChallengeFolderDataset(d, image_height=64, image_width=96)
        try: ds[0]
        except DataError as e: one_line_naming(e, d)


# ---------------------------------------------------------------- config overrides
def _typed_keys() -> dict:
    "Every int / float / bool leaf of the config tree: dotted key -> type (Optional[int] -> int)."
    out = {}
    def walk(cls, prefix):
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            t = hints[f.name]
            if dataclasses.is_dataclass(t): walk(t, f"{prefix}{f.name}."); continue
            args = [a for a in typing.get_args(t) if a is not type(None)]
            base = args[0] if typing.get_origin(t) is typing.Union and len(args) == 1 else t
            if base in (int, float, bool): out[f"{prefix}{f.name}"] = base
    walk(Config, "")
    return out

TYPED = _typed_keys()
CONVERTIBLE = {"true", "false", "yes", "no", "on", "off", "y", "n", "null", "none", "nan", "inf", "infinity"}

def assert_typed_or_config_error(key:str, value:str):
    try: cfg = compose_config([f"{key}={value}"])
    except ConfigError as e:
        assert key in str(e), f"{key}={value!r}: message does not name the key: {e}"
        return str(e)
    got, want = OmegaConf.select(cfg, key), TYPED[key]
    assert got is None or (isinstance(got, want) and not (want is not bool and isinstance(got, bool))), (key, value, got)

def test_typed_keys_found():
    assert {"training.epochs", "training.lr", "data.fs", "model.pretrained"} <= set(TYPED)

@given(key=st.sampled_from(sorted(TYPED)),
       value=st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyzABCXYZ_"), min_size=1, max_size=8).filter(lambda v: v.lower() not in CONVERTIBLE))
@props(25)
def test_config_wrong_type_names_the_key(key, value):
    assert_typed_or_config_error(key, value)

@given(key=st.sampled_from(sorted(TYPED)), value=st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=8))
@props(40, shrink=False)
def test_config_any_text_value_names_the_key_in_one_line(key, value):
    msg = assert_typed_or_config_error(key, value)
    assert msg is None or "\n" not in msg, msg

RANGE_BUGS = {"data.fs": ["0", "-1", "-500"], "training.lr": ["nan", "inf", "-nan"], "data.dpi": ["0", "-100"],
              "data.train_size": ["0", "-1"], "data.val_size": ["0"], "data.augment_strength": ["-3", "2.5", "nan"],
              "model.dropout": ["-0.1", "1.0", "2"], "data.num_workers": ["-2", "-8"], "training.grad_clip": ["-1", "nan"],
              "training.weight_decay": ["-1"], "model.coarse_hz": ["0", "-25"], "training.snr_every": ["0"],
              "training.max_steps_per_epoch": ["0", "-5"], "data.image_height": ["0", "-32"], "data.image_width": ["33"],
              "training.device": ["gpu", "cuda:x"], "data.layout": ["4x3"], "data.style": ["fancy"]}

@pytest.mark.slow
@given(kv=st.sampled_from([(k, v) for k, vs in RANGE_BUGS.items() for v in vs]))
@props(45, shrink=False)
def test_config_out_of_range_values_are_refused(kv):
    key, value = kv
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")): compose_config([f"{key}={value}"])

@given(name=st.text(st.sampled_from("abcdefghijklmnopqrstuvwxyz0123456789_"), min_size=1, max_size=12)
       | st.sampled_from(["resnet18", "resnet_18", "efficientnet_b0", "convnext_tiny", "123", "null", "true"]))
@props(25)
def test_encoder_name_unknown_or_accepted(name):
    import timm
    try: compose_config([f"model.encoder_name={name}"])
    except ConfigError as e: assert "model.encoder_name" in str(e), str(e)
    else: assert timm.is_model(name)


# ---------------------------------------------------------------- EcgRecord and the SNR metric
SIGNAL_VALUES = st.floats(-50, 50, allow_subnormal=False, width=32)

@st.composite
def signals(draw, T=None, n=12):
    "(T, n) float64 mV with random NaN / inf patterns: whole leads, spans, or scattered samples."
    T = draw(st.integers(0, 400)) if T is None else T
    x = np.asarray(draw(st.lists(SIGNAL_VALUES, min_size=T * n, max_size=T * n)), np.float64).reshape(T, n) if T * n <= 400 \
        else np.random.default_rng(draw(st.integers(0, 2**32 - 1))).normal(0, draw(st.floats(0, 5)), (T, n))
    for _ in range(draw(st.integers(0, 3))):
        kind = draw(st.sampled_from(["lead", "span", "scatter"]))
        v = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
        if kind == "lead": x[:, draw(st.integers(0, n - 1))] = v
        elif kind == "span" and T: a = draw(st.integers(0, T - 1)); x[a:draw(st.integers(a, T))] = v
        elif T: x[np.random.default_rng(draw(st.integers(0, 99))).random(x.shape) < draw(st.floats(0, 1))] = v
    return x

@given(ref=signals(), data=st.data(), fs=st.sampled_from([100, 250, 500, 1000]))
@props(50)
def test_snr_finite_or_documented_nan(ref, data, fs):
    est = data.draw(st.one_of(st.none(), signals(T=data.draw(st.integers(0, 2 * len(ref) + 1)))))
    shown = np.isfinite(ref).any(0)
    for per_lead, record, cap in ((snr_per_lead, challenge_snr, np.inf), (aligned_snr_per_lead, aligned_snr, SNR_CAP_DB)):
        per = per_lead(ref, est, fs)
        v = np.array(list(per.values()))
        assert list(per) == list(LEADS) and not np.isinf(v).any() and (v[np.isfinite(v)] <= cap).all()
        assert np.isnan(v[~shown]).all()                           # nothing to compare with: NaN, documented
        if est is None: assert (v[shown] == 0).all()               # missing record: 0 dB wherever the reference shows
        score = record(ref, est, fs)
        assert np.isnan(score) if np.isnan(v).all() else np.isfinite(score) and score == pytest.approx(np.nanmean(v))

DEFAULT = object()

@given(T=st.integers(0, 300), n=st.integers(0, 13), fs=st.one_of(st.floats(), st.integers(-5, 5000), st.text(max_size=4), st.none(), st.booleans()),
       leads=st.one_of(st.just(DEFAULT), st.none(), st.text(max_size=13),
                       st.lists(st.one_of(st.sampled_from(LEADS), st.sampled_from(LEADS), st.integers(), st.none()), max_size=13)))
@props(50)
def test_ecg_record_constructor_clear_errors(T, n, fs, leads):
    try: rec = EcgRecord(np.zeros((T, n)), fs, name="r") if leads is DEFAULT else EcgRecord(np.zeros((T, n)), fs, leads, "r")
    except (TypeError, ValueError) as e:
        assert str(e).startswith("r: "), f"unclear {type(e).__name__}: {e}"
        return
    assert rec.signal.shape == (T, n) and rec.signal.dtype == np.float32 and np.isfinite(rec.fs) and rec.fs > 0
    assert all(isinstance(l, str) for l in rec.leads) and len(rec.leads) == n
    repr(rec); rec.standard()

@given(fs=st.one_of(st.floats(allow_nan=True), st.sampled_from([0, -1])), ref=signals(T=50))
@props(25)
def test_snr_bad_rate_is_a_value_error(fs, ref):
    assume(not (np.isfinite(fs) and fs > 0))
    with pytest.raises(ValueError, match="Hz"): challenge_snr(ref, ref, fs)
