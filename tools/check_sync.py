"""CI guard: the package must equal what `nbdev_export` makes from nbs/, and committed notebooks carry no outputs."""
import json, subprocess, sys
from pathlib import Path

root = Path(__file__).resolve().parents[1]
def status():
    return subprocess.run(["git", "status", "--porcelain", "--", "ecg_digitization"], cwd=root,
                          capture_output=True, text=True, check=True).stdout
def diff():
    return subprocess.run(["git", "diff", "--", "ecg_digitization"], cwd=root, capture_output=True, text=True).stdout

before, before_diff = status(), diff()
subprocess.run([str(Path(sys.executable).parent / "nbdev_export")],
               cwd=root, check=True)
problems = []
if status() != before or diff() != before_diff:
    problems.append("nbdev_export changed ecg_digitization/ - the package is out of sync with nbs/:\n"
                    + subprocess.run(["git", "status", "--short", "--", "ecg_digitization"], cwd=root, capture_output=True, text=True).stdout)
for p in sorted((root / "nbs").rglob("*.ipynb")):
    if ".ipynb_checkpoints" in p.parts: continue
    cells = json.loads(p.read_text()).get("cells", [])
    dirty = [i for i, c in enumerate(cells) if c.get("cell_type") == "code" and (c.get("outputs") or c.get("execution_count"))]
    if dirty: problems.append(f"{p.relative_to(root)} has outputs in cells {dirty[:5]} - run nbdev_clean")
if problems:
    print("\n".join(problems)); sys.exit(1)
print("check: package matches notebooks; notebooks are clean")
