"Integration checks for the renderer: the benchmark script runs end to end and writes its JSON (timings are not asserted)."
import json, subprocess, sys
import pytest
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

@pytest.mark.slow
def test_bench_render_script_writes_results(tmp_path):
    out = tmp_path / "render.json"
    p = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_render.py"), "--n", "2", "--out", str(out)],
                       cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    res = json.loads(out.read_text())
    assert res["page_px"][:2] == [1700, 2200]
    for threads in res["results"].values():
        assert set(threads) == {"clean", "augment_only", "augmented", "augmented_all_steps", "augmented_heavy"}
        assert all(v["median_ms"] > 0 and v["n"] == 2 for v in threads.values())
    assert "clean" in p.stdout and "augmented" in p.stdout
