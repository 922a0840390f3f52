"""Shared pytest fixtures: a real MLflow tracking server for the test session, and a handle to kill and restart it."""
import os, signal, socket, subprocess, sys, time, urllib.request
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))   # test the checkout's package


def digitize_in_process(*args) -> tuple:
    """(exit code, stdout, stderr) of `python -m ecg_digitization.digitize ARGS`, run in this process: the same `main`,
    without an interpreter start and the torch/model imports. Tests of the real command line keep a subprocess."""
    import contextlib, io
    from ecg_digitization.digitize import main
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try: rc = main([str(a) for a in args])
        except SystemExit as e: rc = e.code
    return rc, out.getvalue(), err.getvalue()


def free_port() -> int:
    "A TCP port on 127.0.0.1 that nothing listens on right now."
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0)); return s.getsockname()[1]


class MlflowServer:
    "A real `mlflow server` on 127.0.0.1 (sqlite store + served artifacts folder) that tests can kill and restart."
    def __init__(self, root, port=None):
        self.root, self.port, self.proc = Path(root), port or free_port(), None
        self.root.mkdir(parents=True, exist_ok=True)
        self.log = self.root / "server.log"

    @property
    def uri(self) -> str: return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=2) as r: return r.status == 200
        except OSError: return False

    def start(self, timeout_s: float = 120) -> "MlflowServer":
        "Start the server (same port and store as before) and wait until /health answers."
        env = {k: v for k, v in os.environ.items() if not k.startswith("MLFLOW_")}
        env["MLFLOW_SERVER_ENABLE_JOB_EXECUTION"] = "false"   # no job-runner process: faster start, less to kill
        cmd = [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(self.port), "--workers", "1",
               "--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}", "--artifacts-destination", str(self.root / "artifacts")]
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=self.root, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            if self.alive(): return self
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"mlflow server not healthy after {timeout_s} s:\n{self.log.read_text()[-3000:]}")

    def _signal_group(self, sig):
        if self.proc is not None and self.proc.poll() is None:
            try: os.killpg(self.proc.pid, sig)   # the server's own process group (it was started in a new session)
            except ProcessLookupError: pass

    def kill(self):
        "Crash the server: SIGKILL its process group, then wait until the port refuses connections."
        self._signal_group(signal.SIGKILL)
        if self.proc is not None: self.proc.wait(30)
        for _ in range(100):
            if not self.alive(): return
            time.sleep(0.1)

    def stop(self):
        "Shut the server down (SIGTERM, then SIGKILL after 15 s)."
        self._signal_group(signal.SIGTERM)
        try:
            if self.proc is not None: self.proc.wait(15)
        except subprocess.TimeoutExpired: self.kill()
        self._signal_group(signal.SIGKILL)   # workers left behind by a clean exit

    def restart(self) -> "MlflowServer":
        self.kill(); return self.start()

    def ensure_running(self) -> "MlflowServer":
        return self if self.alive() else self.start()


@pytest.fixture(scope="session")
def mlflow_server_proc(tmp_path_factory):
    "The session's `MlflowServer` (kill/start/restart it in fault tests; restore it with `ensure_running()`)."
    srv = MlflowServer(tmp_path_factory.mktemp("mlflow_server")).start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def mlflow_server(mlflow_server_proc):
    "Tracking URI (http://127.0.0.1:<port>) of a real MLflow server shared by the session."
    return mlflow_server_proc.uri


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long integration tests (still run by `make test`; deselect with -m 'not slow')")


# `make test` runs pytest on two workers (pytest-xdist, `-n 2 --dist loadfile --no-loadscope-reorder`): each module runs
# on one worker, so its module fixtures (a trained run, a sweep) are built once, and the modules are handed out slowest
# first so that neither worker is left with a long module at the end. Two Ray tests may then run at the same time:
# each starts its own local cluster (`ray.init()` joins only a cluster that `ray start` made).
SLOWEST_FIRST = ("test_train_ray", "test_train", "test_digitize_ray", "test_faults", "test_archive", "test_heavy_pages",
                 "test_digitize", "test_data", "test_properties", "test_quality", "test_official_score", "test_never_crash",
                 "test_compare", "test_tracking", "test_guide_blocks", "test_compat")


def pytest_collection_modifyitems(config, items):
    rank = {name: i for i, name in enumerate(SLOWEST_FIRST)}
    items.sort(key=lambda it: rank.get(Path(str(it.fspath)).stem, len(rank)))   # stable: a module keeps its order
