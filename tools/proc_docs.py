"""Process the notebooks for the docs site into `_proc/`, as `nbdev_proc_nbs --file_glob '*.ipynb'` does, but without
nbdev's installer: when Quarto is missing, nbdev 2.4 runs `sudo` to install it and then `pip install -e .[dev]` with
whichever pip comes first on PATH, which can be the system's. Installing Quarto is left to `make docs`.

    python tools/proc_docs.py
"""
import nbdev.quarto as q

q._ensure_quarto = lambda: None
q._pre_docs(file_glob="*.ipynb")
