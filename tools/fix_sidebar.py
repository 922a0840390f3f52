"""Point the docs sidebar (`_proc/sidebar.yml`) at the real numbered notebook folders. nbdev 2.4 drops the `01_`
prefix of a folder in sidebar links but keeps it in the processed files (AnswerDotAI/nbdev#1492), so
`signals/00_signals.ipynb` must become `01_signals/00_signals.ipynb`. Fails when an entry names no notebook."""
import re, sys
from pathlib import Path

nbs = Path(sys.argv[1] if len(sys.argv) > 1 else "nbs")
sidebar = Path(sys.argv[2] if len(sys.argv) > 2 else "_proc/sidebar.yml")
folders = {re.sub(r"^\d+_", "", d.name): d.name for d in nbs.iterdir() if d.is_dir()}

def real(m):
    first, _, rest = m[2].partition("/")
    return f"{m[1]}{folders.get(first, first)}/{rest}"

sidebar.write_text(re.sub(r"(?m)^(\s*- )(\S+/\S+\.ipynb)$", real, sidebar.read_text()))
entries = [l.split("- ", 1)[1] for l in sidebar.read_text().splitlines() if l.strip().startswith("- ") and l.strip().endswith(".ipynb")]
missing = [e for e in entries if not (sidebar.parent / e).exists()]
if missing: sys.exit(f"sidebar entries with no notebook: {missing}")
print(f"sidebar: {len(entries)} notebooks")
