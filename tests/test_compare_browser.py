"""The run comparison in a real browser: Voilà serves nbs/compare.ipynb on 127.0.0.1 against a store of example runs,
headless Chromium (Playwright, Debian's chromium) selects two runs, checks the rendered comparison, sets the
`champion` alias with the button and saves a screenshot (test-artifacts/compare.png).

Needs `pip install voila playwright` and `apt-get install -y chromium` (never `playwright install`); skips otherwise.
ECGD_CHROMIUM overrides the browser path; ECGD_UPDATE_SCREENSHOT=1 also refreshes docs/compare_screenshot.png
(written when missing)."""
import os, shutil, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest


ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("ECGD_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--no-first-run", "--disable-sync"]
SHOT, DOC_SHOT = ROOT / "test-artifacts" / "compare.png", ROOT / "docs" / "compare_screenshot.png"


def _missing() -> str | None:
    "Why the browser test cannot run here, or None."
    try: import playwright.sync_api  # noqa: F401
    except ImportError: return "playwright is not installed: pip install playwright (the test uses Debian's chromium; never run `playwright install`)"
    try: import voila  # noqa: F401
    except ImportError: return "voila is not installed: pip install voila"
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        return f"no chromium at {CHROMIUM}: apt-get update && apt-get install -y chromium (or set ECGD_CHROMIUM)"
    return None


pytestmark = [pytest.mark.slow,   # a Voila server and a browser (make test runs it; make test-fast skips it)
              pytest.mark.skipif(_missing() is not None, reason=str(_missing()))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    "A sqlite store with 4 example runs in experiment ecg-digitization; run 1 registered a model version."
    from mlflow import MlflowClient
    from ecg_digitization.compare import log_example_runs
    from ecg_digitization.tracking.sync import register_run_model
    uri = f"sqlite:///{tmp_path_factory.mktemp('compare-demo')}/mlflow.db"
    ids = log_example_runs(uri, n=4, experiment="ecg-digitization")
    register_run_model(MlflowClient(uri), ids[1], "signal_comparison.png", "ecg_digitizer_signalsavants")
    return uri, ids, [MlflowClient(uri).get_run(i).info.run_name for i in ids]


@pytest.fixture(scope="module")
def voila_url(store, tmp_path_factory):
    "Voilà serving nbs/compare.ipynb on 127.0.0.1, its kernel pointed at the store through MLFLOW_TRACKING_URI."
    port, home = free_port(), tmp_path_factory.mktemp("voila")
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}, "MLFLOW_TRACKING_URI": store[0],
           "ECGD_HOME": str(home), "MPLBACKEND": "Agg", "JUPYTER_RUNTIME_DIR": str(home / "runtime")}
    log = open(home / "voila.log", "wb")
    proc = subprocess.Popen([sys.executable, "-m", "voila", "nbs/compare.ipynb", "--no-browser", f"--port={port}",
                             "--Voila.ip=127.0.0.1", "--show_tracebacks=True"],
                            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    url, deadline = f"http://127.0.0.1:{port}/", time.monotonic() + 90
    try:
        while True:
            if proc.poll() is not None: pytest.fail(f"voila exited with {proc.returncode}:\n{(home / 'voila.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=60) as r:
                    if r.status == 200: break
            except OSError: pass
            if time.monotonic() > deadline: pytest.fail(f"voila did not answer on {url}:\n{(home / 'voila.log').read_text()[-3000:]}")
            time.sleep(0.5)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)        # voila shuts its kernels down on SIGTERM
        try: proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL); proc.wait(10)
        log.close()


def _wait(page, js: str, what: str, timeout_s: float = 60):
    "Wait until the JS expression is true; on timeout fail with what was awaited and the status line."
    try: page.wait_for_function(js, timeout=timeout_s * 1000)
    except Exception:
        status = page.eval_on_selector(".ecgd-status", "e => e.textContent") if page.query_selector(".ecgd-status") else "(no status line)"
        pytest.fail(f"browser: timed out waiting for {what}; status line: {status}")


def test_browser_compares_two_runs_and_sets_alias(voila_url, store):
    from playwright.sync_api import sync_playwright
    from mlflow import MlflowClient
    uri, ids, names = store
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            js_errors = []
            page.on("pageerror", lambda e: js_errors.append(str(e)))
            page.goto(voila_url, wait_until="domcontentloaded", timeout=120_000)
            _wait(page, "document.querySelectorAll('.ecgd-run-select select option').length == 4", "the run list", 150)
            options = page.eval_on_selector_all(".ecgd-run-select select option", "els => els.map(e => e.textContent)")
            pick = [o for o in options if o.startswith((names[1], names[2]))]
            assert len(pick) == 2, options
            page.select_option(".ecgd-run-select select", label=pick)

            _wait(page, "document.querySelector('.ecgd-status').textContent.includes('2 run(s) selected')", "the selection")
            loaded = "(s) => Array.from(document.querySelectorAll(s)).filter(i => i.complete && i.naturalWidth > 0).length"
            _wait(page, f"({loaded})('.ecgd-signals img') == 2 && ({loaded})('img.ecgd-curves') == 1 && ({loaded})('img.ecgd-snr') == 1",
                  "the curves, SNR bars and both signal_comparison.png images")
            ticked = page.eval_on_selector_all("table.ecgd-runs tbody tr", "rows => rows.filter(r => r.textContent.includes('✓')).map(r => r.cells[1].textContent)")
            assert sorted(ticked) == sorted(names[1:3])
            diff = page.inner_text("table.ecgd-diff")
            assert all(k in diff for k in ("approach.method", "model.encoder_name", "training.lr")) and "training.batch_size" not in diff
            shown = page.inner_text(".ecgd-signals")
            assert names[1] in shown and names[2] in shown
            assert page.eval_on_selector("img.ecgd-snr", "i => i.naturalWidth") > 300

            page.select_option(".ecgd-alias-run select", label=names[1])
            page.click("button.ecgd-alias-btn")
            _wait(page, "document.querySelector('.ecgd-status').textContent.includes('now points at version 1')", "the alias message")

            height = page.evaluate("Math.max(document.getElementById('rendered_cells')?.scrollHeight || 0, document.documentElement.scrollHeight)")
            page.set_viewport_size({"width": 1280, "height": min(int(height) + 40, 6000)})
            SHOT.parent.mkdir(exist_ok=True)
            page.screenshot(path=str(SHOT), full_page=True)
            assert not js_errors, js_errors
        finally:
            browser.close()
    assert SHOT.stat().st_size > 50_000
    if os.environ.get("ECGD_UPDATE_SCREENSHOT") == "1" or not DOC_SHOT.exists():
        DOC_SHOT.parent.mkdir(exist_ok=True); shutil.copy(SHOT, DOC_SHOT)
    assert MlflowClient(uri).get_model_version_by_alias("ecg_digitizer_signalsavants", "champion").run_id == ids[1]
