"""GX Data Docs that work offline and say what the gate decided.

GX writes pages that load Bootstrap, jQuery, Font Awesome, Vega ... from public CDNs; on the bureau's
network (no internet) they render unstyled. The same files come from the npm registry with the project
(package.json, `npm ci` in scripts/setup.sh and the Dockerfile); they are copied once into
<out>/data_docs/_assets/ and every page is pointed at them. GX also marks a registry "Failed" whenever one
of its rows was quarantined; when the night's data-quality gate passed, the pages say "passed with N rows
quarantined" instead.
"""

from __future__ import annotations

import filecmp
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)
ASSETS_ENV = "SUBSIDY_LEDGER_NODE_MODULES"
ASSETS_FOLDER = "_assets"

_BT, _BT0 = "https://unpkg.com/bootstrap-table@1.19.1/dist/", "https://unpkg.com/bootstrap-table@1.19.0/dist/"
_FC = "extensions/filter-control/bootstrap-table-filter-control"
_CF = "https://cdnjs.cloudflare.com/ajax/libs/"
# CDN address (as GX 1.x writes it) -> the same file inside node_modules (versions pinned in package.json)
CDN_FILES = {
    "https://maxcdn.bootstrapcdn.com/bootstrap/4.3.1/css/bootstrap.min.css": "bootstrap/dist/css/bootstrap.min.css",
    "https://stackpath.bootstrapcdn.com/bootstrap/4.3.1/js/bootstrap.min.js": "bootstrap/dist/js/bootstrap.min.js",
    "https://code.jquery.com/jquery-3.7.1.min.js": "jquery/dist/jquery.min.js",
    f"{_CF}popper.js/1.12.9/umd/popper.min.js": "popper.js/dist/umd/popper.min.js",
    f"{_CF}font-awesome/6.6.0/css/all.min.css": "@fortawesome/fontawesome-free/css/all.min.css",
    f"{_BT}bootstrap-table.min.css": "bootstrap-table/dist/bootstrap-table.min.css",
    f"{_BT}bootstrap-table.min.js": "bootstrap-table/dist/bootstrap-table.min.js",
    f"{_BT}{_FC}.min.js": f"bootstrap-table/dist/{_FC}.min.js",
    f"{_BT0}{_FC}.min.css": f"bootstrap-table/dist/{_FC}.min.css",
    f"{_BT0}{_FC}.css": f"bootstrap-table/dist/{_FC}.css",
    f"{_CF}bootstrap-datepicker/1.9.0/css/bootstrap-datepicker.min.css":
        "bootstrap-datepicker/dist/css/bootstrap-datepicker.min.css",
    f"{_CF}bootstrap-datepicker/1.9.0/js/bootstrap-datepicker.min.js":
        "bootstrap-datepicker/dist/js/bootstrap-datepicker.min.js",
    "https://cdn.jsdelivr.net/npm/vega@5": "vega/build/vega.min.js",
    "https://cdn.jsdelivr.net/npm/vega-lite@5": "vega-lite/build/vega-lite.min.js",
    "https://cdn.jsdelivr.net/npm/vega-embed@6": "vega-embed/build/vega-embed.min.js",
    "https://cdn.jsdelivr.net/npm/@forevolve/bootstrap-dark@1.1.0/dist/css/bootstrap-prefers-dark.css":
        "@forevolve/bootstrap-dark/dist/css/bootstrap-prefers-dark.css",
}
EXTRA_FOLDERS = ("@fortawesome/fontawesome-free/webfonts",)  # all.min.css loads ../webfonts/*
# GX's remote logos: shown from the site's own static images instead
REMOTE_IMAGE = re.compile(r"https://great-expectations-web-assets\.s3\.[a-z0-9-]+\.amazonaws\.com/[^\"' ]+")
FAILED_STATUS = '<i class="fas fa-times text-danger" aria-hidden="true"></i> Failed'
INDEX_ROW = re.compile(r"(\{'validation_success': ')((?:(?!'validation_success').)*?)"
                       r"(', 'run_time'(?:(?!'validation_success').)*?drop_([a-z_]+)-)", re.S)


class AssetsMissing(RuntimeError):
    """The npm packages the pages need are not installed (run scripts/setup.sh)."""


def node_modules() -> Path:
    """Where the npm packages are: $SUBSIDY_LEDGER_NODE_MODULES, else node_modules at the project root."""
    env = os.environ.get(ASSETS_ENV)
    return Path(env) if env else Path(__file__).resolve().parents[2] / "node_modules"


def install_assets(docs_root: Path, modules: Path | None = None) -> Path:
    """Copy the pages' static files into <docs_root>/_assets (once; a changed file is replaced)."""
    modules = Path(modules) if modules else node_modules()
    missing = [p for p in [*CDN_FILES.values(), *EXTRA_FOLDERS] if not (modules / p).exists()]
    if missing:
        raise AssetsMissing(f"the Data Docs assets are not installed under {modules} (missing {missing[0]}); "
                            "run scripts/setup.sh (npm ci) or set $" + ASSETS_ENV)
    target = Path(docs_root) / ASSETS_FOLDER
    for rel in CDN_FILES.values():
        src, dst = modules / rel, target / rel
        if not dst.exists() or not filecmp.cmp(src, dst, shallow=False):
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, dst)
    for rel in EXTRA_FOLDERS:
        shutil.copytree(modules / rel, target / rel, dirs_exist_ok=True)
    return target


def _relative(page: Path, docs_root: Path) -> str:
    depth = len(page.relative_to(docs_root).parts) - 1
    return "../" * depth


def localise(site: Path, docs_root: Path) -> int:
    """Point every page of one run's site (under docs_root) at the local assets; returns the pages rewritten."""
    count = 0
    for page in Path(site).rglob("*.html"):
        text = page.read_text("utf-8")
        up = _relative(page, Path(docs_root))
        for url, rel in CDN_FILES.items():
            text = text.replace(url, f"{up}{ASSETS_FOLDER}/{rel}")
        text = REMOTE_IMAGE.sub(f"{_relative(page, Path(site))}static/images/logo-long.png", text)
        page.write_text(text, "utf-8")
        count += 1
    return count


def restate(site: Path, quarantined: dict[str, int]) -> None:
    """Once the night's data-quality gate has passed: GX's "Failed" for a registry whose only failures are its
    quarantined rows becomes "passed with N rows quarantined", on its page and in the index."""
    quarantined = {k: int(v) for k, v in quarantined.items() if int(v) > 0}
    for page in Path(site).rglob("*.html"):
        text = page.read_text("utf-8")
        new = _restate(text, page, quarantined)
        if new != text:
            page.write_text(new, "utf-8")


def _note(n: int) -> str:
    return (f'<i class="fas fa-check-circle text-warning" aria-hidden="true"></i> '
            f"Passed with {int(n)} rows quarantined (数据质量门通过，{int(n)} 行已隔离)")


def _restate(text: str, page: Path, quarantined: dict[str, int]) -> str:
    registry = next((r for r in quarantined if f"drop_{r}-{r}" in page.name), None)
    if registry is not None and FAILED_STATUS in text:
        text = text.replace(FAILED_STATUS, _note(quarantined[registry]))

    def row(m: re.Match) -> str:
        name = m.group(4)
        if "ge-failed-icon" not in m.group(2) or name not in quarantined:
            return m.group(0)
        icon = (f'<span class="ge-index-page-table-validation-links-item" >'
                f'<i class="fas fa-check-circle text-warning" ></i> {int(quarantined[name])} quarantined</span>')
        return m.group(1) + icon + m.group(3)
    return INDEX_ROW.sub(row, text)
