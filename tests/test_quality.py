"""The shipped model on the ecg-image-kit pages of the shared data, scored with the official PhysioNet 2024 score.

Regression guards sit about 1.5 dB under the measured values (docs/benchmarks.md); the clean set's guard is also the
product's target (at least 20 dB on the 8 clean pages), so this test fails when the target stops being met.
"""
import numpy as np, pytest
from ecg_digitization.core import shared_data_dir
from ecg_digitization.data.challenge import challenge_images
from ecg_digitization.signals.records import read_record
from ecg_digitization.digitize import Digitizer, read_image
from ecg_digitization.metrics import score_records

pytestmark = pytest.mark.slow   # the shipped model on every ecg-image-kit page (make test runs it; make test-fast skips it)

SETS = {"clean": ("challenge2024_sample", "challenge2024_more/clean"),
        "distorted": ("challenge2024_sample_distorted", "challenge2024_more/distorted")}
FLOOR_DB = {"clean": 20.0, "distorted": 17.5}     # measured 20.54 and 18.97 dB: docs/benchmarks.md (kit, kit_distorted)


@pytest.fixture(scope="module")
def digitizer():
    return Digitizer.from_uri("default", device="cpu")


@pytest.mark.parametrize("which", list(SETS))
def test_shipped_model_on_ecg_image_kit_pages(digitizer, which):
    d = shared_data_dir()
    if d is None or not all((d / f).is_dir() for f in SETS[which]):
        pytest.skip("ecg-image-kit pages not found: set ECGD_DATA or put the shared data at ../shared/data")
    refs, ests = [], []
    for folder in SETS[which]:
        for hea, img in challenge_images(d / folder):
            ref = read_record(hea.with_suffix(""))
            refs.append(ref); ests.append(digitizer.digitize(read_image(img), fs=ref.fs, name=hea.stem))
    sc = score_records(refs, ests)
    assert len(refs) == {"clean": 8, "distorted": 5}[which]
    assert sc["n_missing"] == 0 and np.isfinite(sc["snr"])
    assert sc["snr"] >= FLOOR_DB[which], f"{which}: {sc['snr']:.2f} dB < {FLOOR_DB[which]} dB"
