"""Digitizing never crashes (hypothesis): any lead mask or trace map through `vectorize`, any map and page through
`refine.refine_trace`, any image through `Digitizer.digitize` and the digitize command gives a record of the right
shape or a one-line `records.DataError` saying what was wrong; never an IndexError, ZeroDivisionError, cv2.error or
LinAlgError from deep inside.

Maps: empty, all ink, single pixels, random blobs and strokes, noise, narrow panels (1-40 columns), and rendered
pages' own masks cut, erased, rotated and shrunk; as (H,W) labels, (1,H,W) trace maps or (12|13,H,W) lead maps,
hard or soft, float or uint8, from 1 px to page-sized, with no page image, a blank one, noise, or the page itself.
`ECGD_MODEL=<checkpoint or models:/ URI>` adds a trained model's outputs on random augmentations of rendered pages.

Runs are deterministic (`derandomize`); `ECGD_PROPERTY_EXPLORE=1` searches 20x more examples at random."""
import os
from pathlib import Path
import numpy as np, pytest, cv2, torch
from hypothesis import HealthCheck, Phase, given, settings, strategies as st

from ecg_digitization.core import EcgRecord, LEADS, LAYOUTS
from ecg_digitization.signals.records import DataError
from ecg_digitization.vectorize.grid import deskew
from ecg_digitization.vectorize.trace import panel_trace, track_runs, _runs
from ecg_digitization.vectorize.refine import refine_trace
from ecg_digitization.vectorize import vectorize
from ecg_digitization.models import create_model, model_state
from ecg_digitization.digitize import Digitizer
from ecg_digitization.signals import synthesize_ecg
from ecg_digitization.render import render_ecg
from ecg_digitization.augment import augment
from conftest import digitize_in_process

EXPLORE = os.environ.get("ECGD_PROPERTY_EXPLORE") == "1"

def props(n:int):
    "Hypothesis settings: `n` examples (x20 when exploring), no deadline, no example database in the repo."
    return settings(max_examples=n * (20 if EXPLORE else 1), deadline=None, derandomize=not EXPLORE, database=None,
                    report_multiple_bugs=False, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture, HealthCheck.data_too_large])

def record_or_data_error(fn, n_samples:int, where:str|None=None, refusals:tuple=()):
    """fn(): an `EcgRecord` of (n_samples, 12) float32 mV in `LEADS` order without inf, or a one-line `DataError` (naming
    `where`); anything else fails. So does a crash deep inside that `errors.data_errors` turned into a `DataError`
    (it names the exception and function): that is a bug to fix where it happens, unless it is one of `refusals`."""
    try: rec = fn()
    except DataError as e:
        msg = str(e)
        assert "\n" not in msg and e.problem.strip(), repr(msg)
        if where is not None: assert msg.startswith(f"{where}: "), msg
        cause = e.__cause__
        while isinstance(cause, DataError): cause = cause.__cause__
        assert cause is None or any(r in msg for r in refusals), f"a crash, caught only at the entry point: {msg}"
        return msg
    assert isinstance(rec, EcgRecord), type(rec)
    assert rec.signal.shape == (n_samples, 12) and rec.signal.dtype == np.float32 and list(rec.leads) == list(LEADS)
    assert not np.isinf(rec.signal).any()
    return rec


# ---------------------------------------------------------------- maps
KINDS = ["empty", "ink", "pixels", "blobs", "strokes", "noise", "narrow"]
FORMS = ["labels", "trace", "trace_u8", "leads12", "leads13", "leads12_u8"]

def draw_content(rng:np.random.Generator, kind:str, H:int, W:int)->tuple:
    "`(trace, lead)`: (H,W) float trace strength 0..1 and (H,W) lead label 1..12 of one kind of map content."
    base, lab = np.zeros((H, W), np.float32), rng.integers(1, 13, (H, W))
    if kind == "ink": base[:] = 1
    elif kind == "pixels": n = rng.integers(1, 4); base[rng.integers(0, H, n), rng.integers(0, W, n)] = 1
    elif kind == "noise": base = (rng.random((H, W)) < rng.uniform(0.001, 0.3)).astype(np.float32)
    elif kind in ("blobs", "strokes", "narrow"):
        for _ in range(rng.integers(1, 25)):
            y, x, k = rng.integers(0, H), rng.integers(0, W), rng.integers(1, 13)
            if kind == "blobs":
                sl = np.s_[y:y + rng.integers(1, max(2, H // 4)), x:x + rng.integers(1, max(2, W // 3))]
            else:                                           # a wandering trace, or a panel 1-40 columns wide
                n = rng.integers(1, 41) if kind == "narrow" else rng.integers(1, max(2, W))
                xs = np.arange(x, min(W, x + n)); ys = np.clip(y + np.cumsum(rng.integers(-3, 4, len(xs))), 0, H - 1)
                if kind == "narrow" and len(xs): ys = np.r_[ys, rng.integers(0, H)]; xs = np.r_[xs, rng.choice(xs)]   # an ambiguous column
                sl = (ys, xs)
            base[sl] = rng.uniform(0.6, 1.0); lab[sl] = k
    return base, lab

def as_form(base:np.ndarray, lab:np.ndarray, form:str)->np.ndarray:
    "The content as `vectorize` takes it: labels, trace map or per-lead maps, float or uint8."
    if form == "labels": return np.where(base >= 0.5, lab, 0).astype(np.uint8)
    if form.startswith("trace"): return (base * 255).astype(np.uint8)[None] if form.endswith("u8") else base[None]
    leads = np.stack([base * (lab == k) for k in range(1, 13)]).astype(np.float32)
    if form == "leads13": return np.concatenate([(1 - base)[None], leads])
    return (leads * 255).astype(np.uint8) if form.endswith("u8") else leads

class Fixture(tuple):
    "A fixture value hypothesis need not print in full (it reprs every argument of a failing example)."
    def __repr__(self): return f"<{len(self)} fixture values>"

@pytest.fixture(scope="module")
def pages():
    "Three small rendered pages: 3x4+II, 6x2 and 12x1."
    return Fixture([render_ecg(synthesize_ecg(np.random.default_rng(i)), layout=lay, dpi=60, rng=np.random.default_rng(i))
            for i, lay in enumerate(["3x4+II", "6x2", "12x1"])])

def page_image(rng, kind:str, base:np.ndarray, pages)->np.ndarray|None:
    "(H,W,3) uint8 page for the map: none, blank, noise, ink where the map is, or a rendered page resized."
    H, W = base.shape
    if kind == "none": return None
    if kind == "blank": return np.full((H, W, 3), 255, np.uint8)
    if kind == "noise": return rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    if kind == "ink": return np.where(base[..., None] >= 0.5, 0, 255).astype(np.uint8).repeat(3, 2)
    return cv2.resize(pages[rng.integers(len(pages))].image, (W, H), interpolation=cv2.INTER_AREA)

SIDES = st.one_of(st.integers(1, 48), st.integers(49, 400), st.integers(401, 1100))
LAYOUT = st.sampled_from([None, *LAYOUTS])
ROTATION = st.one_of(st.none(), st.just(0.0), st.floats(-15, 15))

@given(H=SIDES, W=SIDES, kind=st.sampled_from(KINDS), form=st.sampled_from(FORMS), soft=st.sampled_from([0, 0.7, 1.5]),
       img=st.sampled_from(["none", "blank", "noise", "ink", "page"]), layout=LAYOUT, rotation=ROTATION, seed=st.integers(0, 2**32 - 1))
@pytest.mark.slow
@props(60)
def test_vectorize_any_map(pages, H, W, kind, form, soft, img, layout, rotation, seed):
    rng = np.random.default_rng(seed)
    base, lab = draw_content(rng, kind, H, W)
    if soft: b = cv2.GaussianBlur(base, (0, 0), soft); base = np.clip(b / max(b.max(), 1e-6) * rng.uniform(0.6, 1.5), 0, 1)
    m, image = as_form(base, lab, form), page_image(rng, img, base, pages)
    got = record_or_data_error(lambda: vectorize(m, image, layout=layout, rotation=rotation), 5000)
    if kind == "empty": assert isinstance(got, str) and "no ECG trace found" in got, got

def cut_up(rng, page, ops:list)->tuple:
    "A rendered page's (mask, image) after random crops, erasures, stray marks, rotations and shrinking."
    mask, img = page.mask.copy(), page.image.copy()
    for op in ops:
        H, W = mask.shape
        if op == "crop":
            y0, x0 = rng.integers(0, H // 2 + 1), rng.integers(0, W // 2 + 1)
            y1, x1 = rng.integers(y0 + 1, H + 1), rng.integers(x0 + 1, W + 1)
            mask, img = mask[y0:y1, x0:x1], img[y0:y1, x0:x1]
        elif op == "erase": mask = np.where(rng.random(mask.shape) < rng.uniform(0.2, 1.0), 0, mask).astype(np.uint8)
        elif op == "rows": y = rng.integers(0, H); mask[y:y + rng.integers(1, H // 2 + 2)] = 0
        elif op == "cols": x = rng.integers(0, W); mask[:, x:x + rng.integers(1, W // 2 + 2)] = 0
        elif op == "specks": mask = np.where(rng.random(mask.shape) < 0.01, rng.integers(1, 13, mask.shape), mask).astype(np.uint8)
        elif op == "blob": y, x = rng.integers(0, H), rng.integers(0, W); mask[y:y + rng.integers(1, 60), x:x + rng.integers(1, 200)] = rng.integers(1, 13)
        elif op == "rotate": a = float(rng.uniform(-15, 15)); mask, img = deskew(mask, a, nearest=True), deskew(img, a)
        elif op == "shrink":
            f = float(rng.choice([0.05, 0.2, 0.5])); size = (max(1, int(W * f)), max(1, int(H * f)))
            mask, img = cv2.resize(mask, size, interpolation=cv2.INTER_NEAREST), cv2.resize(img, size, interpolation=cv2.INTER_AREA)
    return mask, img

OPS = st.lists(st.sampled_from(["crop", "erase", "rows", "cols", "specks", "blob", "rotate", "shrink"]), max_size=3)

@given(which=st.integers(0, 2), ops=OPS, form=st.sampled_from(FORMS + ["soft_trace"]), with_image=st.booleans(),
       layout=LAYOUT, rotation=st.sampled_from([None, 0.0]), seed=st.integers(0, 2**32 - 1))
@props(30)
def test_vectorize_cut_up_pages(pages, which, ops, form, with_image, layout, rotation, seed):
    rng = np.random.default_rng(seed)
    mask, img = cut_up(rng, pages[which], ops)
    m = cv2.GaussianBlur((mask > 0).astype(np.float32), (0, 0), 1.0)[None] if form == "soft_trace" else as_form((mask > 0).astype(np.float32), mask, form)
    record_or_data_error(lambda: vectorize(m, img if with_image else None, layout=layout, rotation=rotation), 5000)

@given(H=SIDES, W=SIDES, shape=st.sampled_from(["(0,W)", "(3,H,W)", "(1,1,H,W)"]), values=st.sampled_from(["nan", "labels>12", "half", "text"]))
@props(20)
def test_vectorize_refuses_what_is_no_map(H, W, shape, values):
    m = {"nan": np.full((1, H, W), np.nan), "labels>12": np.full((H, W), 13), "half": np.full((H, W), 0.5),
         "text": np.full((H, W), "x")}[values]
    bad = {"(0,W)": np.zeros((0, W)), "(3,H,W)": np.zeros((3, H, W)), "(1,1,H,W)": np.zeros((1, 1, H, W))}[shape]
    for x in (m, bad): assert isinstance(record_or_data_error(lambda: vectorize(x), 5000), str)
    assert "px" in record_or_data_error(lambda: vectorize(np.ones((1, H, W)), np.zeros((H + 1, W, 3), np.uint8)), 5000)


# ---------------------------------------------------------------- narrow panels (the cpu_full validation crash)
@given(width=st.integers(1, 40), n_extra=st.integers(1, 6), pen=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
@props(60)
def test_narrow_panel_with_ambiguous_column(width, n_extra, pen, seed):
    "A panel 1-40 columns wide with extra runs in some columns: `np.convolve(..., 'same')` once returned more values than columns (IndexError)."
    rng = np.random.default_rng(seed)
    xs = np.repeat(np.arange(width), pen); ys = np.tile(np.arange(pen), width) + 50 + np.repeat(rng.integers(-2, 3, width), pen)
    ex = rng.integers(0, width, n_extra)                                # stray runs well away from the trace
    ys, xs = np.r_[ys, rng.integers(0, 40, n_extra)], np.r_[xs, ex]
    ws = np.ones(len(ys))
    x, top, bot, w, _ = _runs(ys, xs, ws)
    keep = track_runs(x, top, bot, w)
    assert keep.shape == x.shape and np.bincount(x[keep]).max() <= 1   # at most one run per column
    X, Y, rho, cols = panel_trace(ys, xs, ws)
    assert np.isfinite(X).all() and np.isfinite(Y).all() and set(cols) <= set(range(width))


# ---------------------------------------------------------------- refine
@given(h=st.integers(1, 160), w=st.integers(1, 200), H=SIDES, W=SIDES, kind=st.sampled_from(KINDS + ["page"] * 4), soft=st.booleans(),
       lead_axis=st.booleans(), img=st.sampled_from(["blank", "noise", "ink", "page"]), seed=st.integers(0, 2**32 - 1))
@props(30)
def test_refine_then_vectorize_any_map_and_page(pages, h, w, H, W, kind, soft, lead_axis, img, seed):
    "Random maps on random pages, and a perfect network's map of a rendered page (its mask shrunk) on that page, any size."
    rng = np.random.default_rng(seed)
    if kind == "page":
        pg = pages[rng.integers(len(pages))]
        prob = cv2.resize((pg.mask > 0).astype(np.float32), (w, h), interpolation=cv2.INTER_AREA) * rng.uniform(0.5, 3)
        page = cv2.resize(pg.image, (W, H), interpolation=cv2.INTER_AREA)
    else:
        prob, _ = draw_content(rng, kind, h, w)
        page = page_image(rng, img, cv2.resize(prob, (W, H), interpolation=cv2.INTER_NEAREST), pages)
    if soft: prob = cv2.GaussianBlur(prob, (0, 0), 1.0)
    try: t = refine_trace(prob[None] if lead_axis else prob, page)
    except DataError as e: pytest.fail(f"a finite (h,w) map and a uint8 page were refused: {e}")
    assert t.shape == (1, H, W) and t.dtype == np.float32 and ((t >= 0) & (t <= 1)).all()
    record_or_data_error(lambda: vectorize(t, page), 5000)

@given(bad=st.sampled_from(["nan map", "(2,h,w) map", "empty map", "float page", "(H,W,2) page", "text map"]))
@props(6)
def test_refine_refuses_what_is_no_map_or_page(bad):
    prob, page = np.zeros((40, 50), np.float32), np.full((300, 400, 3), 255, np.uint8)
    prob = {"nan map": np.full((40, 50), np.nan), "(2,h,w) map": np.zeros((2, 40, 50)), "empty map": np.zeros((0, 50)),
            "text map": np.full((40, 50), "x")}.get(bad, prob)
    page = {"float page": page / 255.0, "(H,W,2) page": page[..., :2]}.get(bad, page)
    with pytest.raises(DataError, match="trace map|page image"): refine_trace(prob, page)


# ---------------------------------------------------------------- Digitizer and the command
@pytest.fixture(scope="module")
def untrained():
    "A `Digitizer` with an untrained signalsavants model (small input, so the forward pass stays quick on a CPU)."
    torch.manual_seed(0)
    return Digitizer(create_model("signalsavants", input_size=(128, 160), decoder_channels=[32, 16, 16, 8, 8]), device="cpu")

@st.composite
def any_image(draw, pages):
    "Arrays `Digitizer.digitize` may be handed: any size, 0-4 channels, uint8/uint16/float/bool, NaN; noise, blank or a page."
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    H, W = draw(SIDES), draw(SIDES)
    content = draw(st.sampled_from(["noise", "blank", "page", "rotated page"]))
    img = rng.integers(0, 256, (H, W, 3), dtype=np.uint8) if content == "noise" else np.full((H, W, 3), 255, np.uint8) if content == "blank" \
        else cv2.resize(pages[rng.integers(len(pages))].image, (W, H), interpolation=cv2.INTER_AREA)
    if content == "rotated page": img = deskew(img, float(rng.uniform(-10, 10)))
    img = {"rgb": img, "grey": img[..., 0], "rgba": np.dstack([img, np.full((H, W), 255, np.uint8)]), "one": img[..., :1],
           "two": img[..., :2]}[draw(st.sampled_from(["rgb", "rgb", "grey", "rgba", "one", "two"]))]
    dtype = draw(st.sampled_from(["uint8", "uint8", "float", "uint16", "bool", "nan"]))
    if dtype == "float": img = img / 255.0
    elif dtype == "uint16": img = img.astype(np.uint16) * 257
    elif dtype == "bool": img = img > 127
    elif dtype == "nan": img = img / 255.0; img.flat[rng.integers(img.size)] = np.nan
    return img

PAGE_REFUSED = ()   # the model's own shape check raises a DataError itself

@given(data=st.data(), fs=st.sampled_from([500, 250, 1000]))
@props(15)
def test_digitizer_any_image(untrained, pages, data, fs):
    img = data.draw(any_image(pages))
    record_or_data_error(lambda: untrained.digitize(img, fs=fs, name="page"), 10 * fs, where="page", refusals=PAGE_REFUSED)

def test_digitizer_refuses_what_is_no_image(untrained):
    for img in (np.full((300, 400, 3), "x"), np.zeros((10, 10, 3), np.uint8), np.zeros((300, 400, 3, 2)), [[1, 2], [3]]):
        with pytest.raises(DataError, match="^p: "): untrained.digitize(img, name="p")
    with pytest.raises(ValueError, match="fs must be"): untrained.digitize(np.zeros((300, 400, 3), np.uint8), fs=0)


def test_cli_failing_pages_one_line_each(pages, tmp_path):
    "A model that outputs NaN (diverged training) fails every page: one `error: <file>: <problem>` line each, exit code 1."
    m = create_model("signalsavants", input_size=(128, 160), decoder_channels=[32, 16, 16, 8, 8])
    with torch.no_grad():
        for p in m.parameters(): p.fill_(float("nan"))
    torch.save(model_state(m), tmp_path / "nan.pt")
    files = []
    for i, pg in enumerate(pages[:2]):
        files.append(tmp_path / f"p{i}.png"); cv2.imwrite(str(files[-1]), cv2.cvtColor(pg.image, cv2.COLOR_RGB2BGR))
    rc, out, err = digitize_in_process(*files, "--model", tmp_path / "nan.pt", "--out", tmp_path / "out")
    lines = err.strip().splitlines()
    assert rc == 1 and "Traceback" not in err and "digitized 0/2" in out and "2 failed" in out, (out, err)
    for f in files: assert [l for l in lines if l.startswith(f"error: {f}: ")] == [f"error: {f}: trace map: holds NaN or infinite values"], err
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["manifest.csv"]   # no record, no temp folder

def test_cli_blank_page_warns_and_writes_empty_record(untrained, tmp_path):
    "A page without an ECG is no failure: an all-NaN record and one `warning:` line, exit code 0."
    torch.save(model_state(untrained.model), tmp_path / "m.pt")
    f = tmp_path / "blank.png"; cv2.imwrite(str(f), np.full((400, 500, 3), 255, np.uint8))
    rc, out, err = digitize_in_process(f, "--model", tmp_path / "m.pt", "--out", tmp_path / "out")
    assert rc == 0 and "Traceback" not in err and "digitized 1/1" in out, (out, err)
    warnings = [l for l in err.splitlines() if l.startswith("warning: ")]                # the progress bar shares stderr
    assert len(warnings) == 1 and warnings[0].startswith(f"warning: {f}: trace map: no ECG trace found"), err
    assert (tmp_path / "out" / "blank.hea").exists()


# ---------------------------------------------------------------- a trained model (ECGD_MODEL)
@pytest.fixture(scope="module")
def trained():
    "A `Digitizer` on the trained model `ECGD_MODEL` names (checkpoint or models:/ URI), by default the shipped model."
    uri = os.environ.get("ECGD_MODEL", "default")
    if uri != "default" and "://" not in uri and ":/" not in uri and not Path(uri).exists(): pytest.skip(f"ECGD_MODEL={uri}: no such checkpoint")
    return Digitizer.from_uri(uri, device=os.environ.get("ECGD_DEVICE", "auto"))

@pytest.mark.slow
@given(seed=st.integers(0, 2**32 - 1), layout=st.sampled_from(list(LAYOUTS)), strength=st.sampled_from([0.0, 1.0, 2.0]))
@props(8)
def test_trained_model_on_random_augmentations(trained, seed, layout, strength):
    rng = np.random.default_rng(seed)
    page = augment(render_ecg(synthesize_ecg(rng), layout=layout, dpi=100, rng=rng), rng, strength)
    record_or_data_error(lambda: trained.digitize(page.image, name="page"), 5000, where="page", refusals=PAGE_REFUSED)
