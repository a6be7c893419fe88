"""Great Expectations data docs that open without the internet.

GX's page templates load Bootstrap, jQuery, bootstrap-table, Font Awesome and Vega from CDNs
and the logo from S3: offline (or behind a bank's proxy) the index shows an empty table and the
status icons vanish. After each build, the pages written by that build are rewritten to use
local copies (``expectations/data_docs_assets/``, the exact versions the templates name,
copied once to ``<docs>/static/vendor/``). What has no local copy is dropped: Vega (our suites
draw no charts), a dark-mode stylesheet, and the links to GX's website (their text stays).

Builds take a file lock: several validations at once (one per campaign) must not interleave
their writes of ``index.html``.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

log = logging.getLogger(__name__)

ASSETS_DIR = Path(__file__).resolve().parents[1] / "expectations" / "data_docs_assets"
VENDOR = Path("static") / "vendor"
LOCAL_LOGO = Path("static") / "images" / "logo-long.png"  # shipped by GX, copied with its static assets

# CDN address (as the GX 1.x templates write it) -> file under data_docs_assets/.
_BT = "https://unpkg.com/bootstrap-table@"
_CDNJS = "https://cdnjs.cloudflare.com/ajax/libs/"
CDN_COPIES = {
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery-3.7.1/jquery.min.js",
    _CDNJS + "popper.js/1.12.9/umd/popper.min.js": "popper.js-1.12.9/popper.min.js",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": (
        "bootstrap-4.3.1/bootstrap.min.js"
    ),
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": (
        "bootstrap-4.3.1/bootstrap.min.css"
    ),
    _BT + "1.19.1/dist/bootstrap-table.min.js": "bootstrap-table-1.19.1/bootstrap-table.min.js",
    _BT + "1.19.1/dist/bootstrap-table.min.css": "bootstrap-table-1.19.1/bootstrap-table.min.css",
    _BT + "1.19.1/dist/extensions/filter-control/bootstrap-table-filter-control.min.js": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.js"
    ),
    # the templates name 1.19.0 for this stylesheet; 1.19.1's is the same rule set
    _BT + "1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.min.css": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
    ),
    _BT + "1.19.0/dist/extensions/filter-control/bootstrap-table-filter-control.css": (
        "bootstrap-table-1.19.1/bootstrap-table-filter-control.min.css"
    ),
    _CDNJS + "bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js": (
        "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.js"
    ),
    _CDNJS + "bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css": (
        "bootstrap-datepicker-1.9.0/bootstrap-datepicker.min.css"
    ),
    _CDNJS + "font-awesome/6.6.0/css/all.min.css": "fontawesome-free-6.6.0/css/all.min.css",
}

# Dropped on purpose: no local copy needed (see the module docstring).
DROPPED = ("https://cdn.jsdelivr.net/npm/vega", "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark")

_EXTERNAL = r"""https?://[^"'\s>]+"""
_SCRIPT = re.compile(rf"""<script\b[^>]*\bsrc=["']({_EXTERNAL})["'][^>]*>\s*</script>""", re.IGNORECASE)
_LINK = re.compile(rf"""<link\b[^>]*\bhref=["']({_EXTERNAL})["'][^>]*/?>""", re.IGNORECASE)
_IMG_SRC = re.compile(rf"""(<img\b[^>]*\bsrc=)["']{_EXTERNAL}["']""", re.IGNORECASE)
_CSS_URL = re.compile(rf"""url\(\s*["']?{_EXTERNAL}["']?\s*\)""", re.IGNORECASE)
# GX's favicon path assumes validation pages one folder shallower than ours (we name the runs).
_STATIC_REF = re.compile(r"""(["'(])(?:\./|(?:\.\./)+)static/""")
_ANCHOR_HREF = re.compile(rf"""(<a\b[^>]*?)\s+href=["']{_EXTERNAL}["']""", re.IGNORECASE)


def external_urls(html: str) -> list[str]:
    """Every http(s) address in a page (what a browser offline could not fetch or follow)."""
    return re.findall(_EXTERNAL, html)


def install_assets(docs_dir: Path) -> None:
    """Copy the local library copies under ``<docs>/static/vendor`` (again when one changed)."""
    for source in ASSETS_DIR.rglob("*"):
        if source.is_dir() or source.suffix == ".md":
            continue
        target = docs_dir / VENDOR / source.relative_to(ASSETS_DIR)
        if not target.exists() or target.stat().st_size != source.stat().st_size:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(source, target)


def make_offline(page: Path, docs_dir: Path) -> bool:
    """Rewrite one page to load only local files; True when it changed."""
    html = page.read_text(encoding="utf-8")
    if "://" not in html:
        return False
    root = Path(os.path.relpath(docs_dir, page.parent))

    def local(url: str) -> str | None:
        copy = CDN_COPIES.get(url)
        if copy is None and not url.startswith(DROPPED):
            log.warning("data docs: no local copy of %s (dropped from %s)", url, page.name)
        return (root / VENDOR / copy).as_posix() if copy else None

    def script(match: re.Match[str]) -> str:
        path = local(match.group(1))
        return f'<script src="{path}"></script>' if path else ""

    def link(match: re.Match[str]) -> str:
        path = local(match.group(1))
        return f'<link rel="stylesheet" href="{path}">' if path else ""

    new = _SCRIPT.sub(script, html)
    new = _LINK.sub(link, new)
    logo = (root / LOCAL_LOGO).as_posix()
    new = _IMG_SRC.sub(lambda m: f'{m.group(1)}"{logo}"', new)
    new = _CSS_URL.sub(f"url('{logo}')", new)  # the navbar logo, as an inline-style background
    new = _ANCHOR_HREF.sub(lambda m: m.group(1), new)
    new = _STATIC_REF.sub(lambda m: f"{m.group(1)}{root.as_posix()}/static/", new)
    if new == html:
        return False
    tmp = page.with_name(page.name + ".tmp")
    tmp.write_text(new, encoding="utf-8")
    tmp.replace(page)  # a reader never sees half a page
    return True


def make_site_offline(docs_dir: Path, since_ns: int = 0) -> int:
    """Rewrite the pages written at or after ``since_ns`` (st_mtime_ns); the number rewritten."""
    install_assets(docs_dir)
    changed = 0
    for page in docs_dir.rglob("*.html"):
        if page.stat().st_mtime_ns >= since_ns and make_offline(page, docs_dir):
            changed += 1
    return changed


@contextmanager
def build_lock(docs_dir: Path) -> Iterator[None]:
    """Hold an exclusive lock on the docs site while one build writes it."""
    docs_dir.mkdir(parents=True, exist_ok=True)
    with open(docs_dir / ".build.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
