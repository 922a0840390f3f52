"""Render the processed notebooks in `_proc/` (from `nbdev_proc_nbs`) into a static HTML site, for machines without
Quarto. It follows `_proc/sidebar.yml` for the page order, honours the cell options nbdev writes for Quarto
(`#| include: false`, `#| echo: false`, `#| output: false`) and Quarto's link attributes (`[source](url){target=…}`),
takes each page's title and summary from its front matter, names pages as nbdev's links expect (`06_vectorize/
00b_pipeline.ipynb` -> `06_vectorize/pipeline.html`) and points links to the documentation host at the local pages.

    python tools/render_docs.py _proc _docs
"""
import html, re, shutil, sys
from pathlib import Path
import nbformat, yaml
from nbconvert import HTMLExporter
from nbdev.config import get_config
from nbdev.doclinks import _nbpath2html  # the page name nbdev's doc links point at

src = Path(sys.argv[1] if len(sys.argv) > 1 else "_proc")
out = Path(sys.argv[2] if len(sys.argv) > 2 else "_docs")
cfg = get_config()
title, host = cfg.get("title", "docs"), cfg.get("doc_host", "").rstrip("/")

def pages(entries, section=None):
    "(section, notebook path) in sidebar order."
    for e in entries:
        if isinstance(e, str): yield section, e
        elif isinstance(e, dict) and "contents" in e: yield from pages(e["contents"], e.get("section", section))

sidebar = yaml.safe_load((src / "sidebar.yml").read_text())["website"]["sidebar"]["contents"]
order = list(pages(sidebar))
if not order: sys.exit(f"{src}/sidebar.yml lists no notebooks")

def options(cell):
    "The `#| key: value` options at the top of a code cell, and the source without them."
    opts, lines = {}, cell.source.splitlines()
    while lines and lines[0].startswith("#|"):
        k, _, v = lines.pop(0)[2:].partition(":")
        opts[k.strip()] = v.strip()
    return opts, "\n".join(lines)

def front_matter(nb):
    "Title and description from the raw front-matter cell, which is removed."
    for i, c in enumerate(nb.cells):
        if c.cell_type == "raw" and c.source.lstrip().startswith("---"):
            meta = yaml.safe_load(c.source.strip().strip("-")) or {}
            del nb.cells[i]
            return meta
    return {}

def quarto_links(md:str)->str:
    "`[text](url){key=\"value\" …}` (Quarto's link attributes) as an HTML link."
    return re.sub(r'\[([^\]]+)\]\(([^)\s]+)\)\{([^}]*)\}', lambda m: f'<a href="{m[2]}" {m[3]}>{m[1]}</a>', md)

def prepare(nb):
    cells = []
    for c in nb.cells:
        if c.cell_type == "markdown": c.source = quarto_links(c.source)
        for o in c.get("outputs", []):
            md = o.get("data", {}).get("text/markdown")
            if md: o["data"]["text/markdown"] = quarto_links(md)
        if c.cell_type == "code":
            opts, c.source = options(c)
            if opts.get("include") == "false": continue
            if opts.get("output") == "false": c.outputs = []
            if opts.get("echo") == "false":
                if not c.outputs: continue
                c.metadata.setdefault("transient", {})["remove_source"] = True
        cells.append(c)
    nb.cells = cells
    return nb

exporter = HTMLExporter(template_name="basic")
exporter.exclude_input_prompt = exporter.exclude_output_prompt = True
CSS = """body{margin:0;font:15px/1.55 system-ui,sans-serif;color:#222;display:flex}
nav{width:250px;flex:none;height:100vh;overflow:auto;position:sticky;top:0;background:#f6f7f9;padding:12px;box-sizing:border-box;font-size:13px}
nav a{display:block;color:#333;text-decoration:none;padding:1px 0}nav a.here{font-weight:700;color:#06c}
nav h4{margin:10px 0 2px;font-size:12px;text-transform:uppercase;color:#777}
main{max-width:900px;padding:10px 32px;min-width:0}pre{background:#f4f4f4;padding:8px;overflow:auto}
.jp-InputArea pre{border-left:3px solid #9bd}img{max-width:100%}table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px}
.summary{color:#555;font-size:17px}"""

def page_names(nbs:list)->dict:
    """Notebook -> the page nbdev's links expect; a notebook with no number that would take a numbered one's page
    (`train.ipynb`, the papermill job, beside `13_train.ipynb`, the module) becomes `train-notebook.html`."""
    html_of = {p: _nbpath2html(Path(p)) for p in nbs}
    taken = list(html_of.values())
    names = {p: (h.with_name(h.stem + "-notebook.html") if Path(p).stem.lower() == h.stem and taken.count(h) > 1 else h)
             for p, h in html_of.items()}
    return {p: h.as_posix() for p, h in names.items()}

page = page_names([p for _, p in order])

def href(nb_path:str, here:str)->str: return "../" * here.count("/") + page[nb_path]

def nav(here:str)->str:
    parts, last = [], object()
    for section, p in order:
        if section != last and section: parts.append(f"<h4>{html.escape(section)}</h4>")
        last = section
        cls = ' class="here"' if p == here else ""
        parts.append(f'<a{cls} href="{href(p, here)}">{html.escape(titles[p])}</a>')
    return "\n".join(parts)

def local_links(body:str, here:str)->str:
    if not host: return body
    return re.sub(re.escape(host) + r"/([^\"'#\s)]*)", lambda m: "../" * here.count("/") + m[1], body)

clash = {h for h in page.values() if list(page.values()).count(h) > 1}
if clash: sys.exit(f"notebooks that would share a page: {sorted(clash)}")
if out.exists(): shutil.rmtree(out)
rendered, titles = {}, {}
for _, p in order:
    nb = nbformat.read(src / p, as_version=4)
    meta = front_matter(nb)
    titles[p] = str(meta.get("title", Path(p).stem))
    body, _ = exporter.from_notebook_node(prepare(nb))
    rendered[p] = (meta, body)
for p, (meta, body) in rendered.items():
    summary = re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(str(meta.get("description", ""))))
    summary = f'<p class="summary">{summary}</p>' if summary else ""
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(titles[p])} – {html.escape(title)}</title>"
            f"<style>{CSS}</style></head><body><nav><b>{html.escape(title)}</b>\n{nav(p)}</nav><main>"
            f"<h1>{html.escape(titles[p])}</h1>{summary}{local_links(body, p)}</main></body></html>")
    dest = out / page[p]
    dest.parent.mkdir(parents=True, exist_ok=True)
    dest.write_text(doc)
if not (out / "index.html").exists():
    (out / "index.html").write_text(f'<meta http-equiv="refresh" content="0; url={href(order[0][1], "")}">')
print(f"docs: {len(rendered)} pages in {out}/ (no Quarto: plain HTML via nbconvert)")
