"""A1's report: assessment.xlsx (one sheet per view), assessment.html (one self-contained page with PNG charts
drawn by matplotlib), the charts as files, and behind_plan.csv (通报), under <out>/<as-of>/assessment/.

The leading group's page (assessment_app.py) shows the same `page_body` for any night the warehouse kept.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import html
import io
from dataclasses import dataclass
from decimal import Decimal
from importlib import resources
from pathlib import Path

import pandas as pd
import xlsxwriter

from . import labels
from .assessment import RATE_SCALE, Assessment

SHEETS = ("target", "years", "departments", "towns", "plans", "behind", "certificates", "shares", "money",
          "person_times")
CHARTS = {  # file stem -> Chinese caption
    "person_times_by_year": "培训人次与目标（分年度）",
    "person_times_by_department": "培训人次与年度计划（分部门）",
    "person_times_by_town": "培训人次与年度计划（分镇、街道）",
    "skill_shares": "技能劳动者、高技能人才占比与目标",
    "certificates_by_level": "证书核发（分等级）",
}
LABELLED = {"department_code": "departments", "subsidy_type": "subsidy_types", "certificate_type": "certificate_types",
            "level": "levels", "measure": "measures", "source": "person_time_sources"}
CJK_FAMILIES = ("Noto Sans CJK SC", "Source Han Sans SC", "WenQuanYi Micro Hei", "WenQuanYi Zen Hei", "SimHei")
BEHIND_COLUMNS = ["year", "department_code", "department_name", "town_code", "measure", "planned", "expected",
                  "actual", "shortfall", "completion"]


def _zh_col(c: str) -> str:
    return labels.load()["assessment_columns"].get(c, c)


def _kind(c: str) -> str:
    if c.endswith("_fen"):
        return "money"
    if c.endswith("_units"):
        return "share"
    return "text"


# ---- behind_plan.csv -------------------------------------------------------------------------------------


def _yuan(fen) -> str | None:
    return None if fen is None or pd.isna(fen) else f"{Decimal(int(fen)) / 100:.2f}"


def behind_extract(a: Assessment) -> pd.DataFrame:
    """通报 for machines: each plan behind its pro-rata figure; money in yuan, completion as a decimal."""
    b = a.views["behind"].copy()
    money = b["measure"] == "funds_fen"
    for c in ("planned", "expected", "actual", "shortfall"):
        b[c] = [(_yuan(v) if m else (None if pd.isna(v) else str(int(v)))) for v, m in zip(b[c], money, strict=True)]
    b["measure"] = b["measure"].where(~money, "funds")
    b["department_name"] = labels.series("departments", b["department_code"].astype("string"))
    b["completion"] = [None if pd.isna(u) else f"{Decimal(int(u)) / RATE_SCALE:.4f}" for u in b["completion_units"]]
    return b.reindex(columns=BEHIND_COLUMNS)


# ---- charts ----------------------------------------------------------------------------------------------


@functools.cache
def _cjk_font() -> str | None:
    """A font family with Chinese glyphs: one the machine has, else the Noto Sans CJK SC that mplfonts ships."""
    from matplotlib import font_manager

    have = {f.name for f in font_manager.fontManager.ttflist}
    for family in CJK_FAMILIES:
        if family in have:
            return family
    try:
        path = resources.files("mplfonts").joinpath("fonts", "NotoSansCJKsc-Regular.otf")
    except ModuleNotFoundError:
        return None
    if not path.is_file():
        return None
    font_manager.fontManager.addfont(str(path))
    return font_manager.FontProperties(fname=str(path)).get_name()


def _png(plt, fig) -> bytes:
    """The figure as PNG (no software stamp: the same figures give the same bytes); the figure is closed.
    bbox_inches="tight" alone keeps the rotated labels in (a tight_layout pass first doubled the cost)."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight", metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def _bars(ax, labels_: list[str], actual: list[int], planned: list | None, title: str) -> None:
    x = range(len(labels_))
    ax.bar([i - 0.2 for i in x], actual, width=0.4, label="实际 actual", color="#2F6EBA")
    if planned is not None:
        ax.bar([i + 0.2 for i in x], [0 if pd.isna(v) else int(v) for v in planned], width=0.4,
               label="应完成（计划按进度） due by plan", color="#F2A541")
    top = max([*actual, *(0 if pd.isna(v) else int(v) for v in (planned or []))], default=0)
    ax.set_ylim(0, max(top, 1) * 1.3)  # headroom: the legends sit above the bars
    ax.set_xticks(list(x), labels_, rotation=30, ha="right")
    ax.set_title(title)
    ax.set_ylabel("人次 person-times")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(axis="y", alpha=0.3)


def charts(a: Assessment) -> dict[str, bytes]:
    """The report's charts as PNG bytes, by file stem (CHARTS)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    from matplotlib import pyplot as plt

    font = _cjk_font()
    rc = {"font.size": 9, "axes.unicode_minus": False, "svg.hashsalt": "a1", "figure.max_open_warning": 0}
    if font:
        rc["font.family"] = [font, "DejaVu Sans"]
    out: dict[str, bytes] = {}
    with matplotlib.rc_context(rc):
        out["person_times_by_year"] = _by_year(plt, a)
        d = a.views["departments"]
        out["person_times_by_department"] = _grouped(plt, d, "department_code", CHARTS["person_times_by_department"])
        out["person_times_by_town"] = _grouped(plt, a.views["towns"], "town_code", CHARTS["person_times_by_town"])
        out["skill_shares"] = _shares(plt, a.views["shares"])
        out["certificates_by_level"] = _levels(plt, a.views["certificates"])
    return out


def _by_year(plt, a: Assessment) -> bytes:
    y, t = a.views["years"], a.views["target"].iloc[0]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    years = [str(v) for v in y["year"]]
    _bars(ax, years, list(y["person_times"]), list(y["expected_person_times"]), CHARTS["person_times_by_year"])
    ax2 = ax.twinx()
    # at the bars' positions: years given as text would be categories, which matplotlib logs on every chart
    ax2.plot(range(len(years)), list(y["cumulative"]), marker="o", color="#C0392B", label="累计 cumulative")
    ax2.axhline(int(t["target_person_times"]), color="#C0392B", linestyle="--",
                label=f"三年目标 target {int(t['target_person_times']):,}")
    ax2.set_ylim(bottom=0, top=max(int(t["target_person_times"]), int(y["cumulative"].max() if len(y) else 0)) * 1.3)
    ax2.set_ylabel("累计人次 cumulative")
    ax2.legend(loc="upper right", fontsize=8)
    return _png(plt, fig)


def _grouped(plt, v: pd.DataFrame, key: str, title: str) -> bytes:
    """Person-times per key summed over the years, against the plans due by the as-of date."""
    g = v.groupby(v[key].fillna("未知"), sort=True)[["person_times", "expected_person_times"]].sum(min_count=1)
    names = [f"{labels.zh('departments', k) or k}\n{k}" if key == "department_code" else str(k) for k in g.index]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    _bars(ax, names, [int(n) for n in g["person_times"]], list(g["expected_person_times"]), title)
    return _png(plt, fig)


def _shares(plt, s: pd.DataFrame) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    days = range(len(s))  # positions, the dates as tick labels (as text they would be categories, logged)
    for col, target, name, color in (("skilled_share_units", "skilled_target_units", "技能劳动者占就业人员", "#2F6EBA"),
                                     ("high_skill_share_units", "high_skill_target_units", "高技能人才占技能劳动者",
                                      "#27AE60")):
        ax.plot(days, [None if pd.isna(v) else int(v) / 100 for v in s[col]], marker="o", color=color, label=name)
        if len(s):
            ax.axhline(int(s[target].iloc[0]) / 100, linestyle="--", color=color,
                       label=f"目标 target {int(s[target].iloc[0]) / 100:g}%")
    ax.set_xticks(list(days), [str(d) for d in s["on"]])
    ax.set_ylabel("%")
    ax.set_ylim(bottom=0)
    ax.set_title(CHARTS["skill_shares"])
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    return _png(plt, fig)


def _levels(plt, c: pd.DataFrame) -> bytes:
    fig, ax = plt.subplots(figsize=(7, 3.4))
    lv = c.assign(level=c["level"].astype("Int64").astype("string").fillna("专项"))
    pivot = lv.pivot_table(index="year", columns="level", values="certificates", aggfunc="sum", fill_value=0)
    bottom = [0] * len(pivot)
    x = range(len(pivot))  # positions, the years as tick labels (as text they would be categories, logged)
    for col in pivot.columns:
        name = labels.zh("levels", int(col)) if col.isdigit() else "专项能力 special ability"
        vals = [int(v) for v in pivot[col]]
        ax.bar(x, vals, bottom=bottom, label=name)
        bottom = [a + b for a, b in zip(bottom, vals, strict=True)]
    ax.set_xticks(list(x), [str(y) for y in pivot.index])
    ax.set_title(CHARTS["certificates_by_level"])
    ax.set_ylabel("证书数 certificates")
    if len(pivot.columns):
        ax.legend(fontsize=7, ncol=3)
    else:  # no certificate yet (a first night, or a drop without them): say so, and no empty legend (warned)
        ax.text(0.5, 0.5, "暂无证书 no certificates yet", transform=ax.transAxes, ha="center", va="center")
    ax.grid(axis="y", alpha=0.3)
    return _png(plt, fig)


# ---- the page --------------------------------------------------------------------------------------------


def _cell(c: str, v) -> str:
    if v is None or (not isinstance(v, str) and pd.isna(v)):
        return ""
    kind = _kind(c)
    if kind == "money":
        return f"{Decimal(int(v)) / 100:,.2f}"
    if kind == "share":
        return f"{Decimal(int(v)) / 100:.2f}%"
    if c in LABELLED:
        code = int(v) if c == "level" else v
        name = labels.zh(LABELLED[c], code)
        return f"{name} {v}" if name else str(v)
    return f"{v:,}" if isinstance(v, int) and c not in ("year",) else str(v)


def _table(name: str, frame: pd.DataFrame) -> str:
    head = "".join(f"<th>{html.escape(_zh_col(c))}<br><code>{html.escape(c)}</code></th>" for c in frame.columns)
    body = "".join("<tr>" + "".join(
        f"<td class=\"{'num' if _kind(c) != 'text' or isinstance(v, int) else ''}\">{html.escape(_cell(c, v))}</td>"
        for c, v in zip(frame.columns, row, strict=True)) + "</tr>" for row in frame.astype(object).itertuples(
        index=False))
    title = labels.load()["assessment_views"].get(name, name)
    return (f"<section id=\"{html.escape(name)}\"><h2>{html.escape(title)} <code>{html.escape(name)}</code></h2>"
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table></section>")


STYLE = """body{font-family:"Noto Sans CJK SC","WenQuanYi Micro Hei","Microsoft YaHei",sans-serif;margin:1.5em;
color:#222}table{border-collapse:collapse;font-size:13px;margin:.5em 0 1.5em}th,td{border:1px solid #ccc;
padding:3px 6px}th{background:#DDEBF7;text-align:left}td.num{text-align:right}code{color:#666;font-size:11px}
figure{display:inline-block;margin:0 1em 1em 0}figcaption{font-size:13px}.behind{color:#B03A2E}"""


def page_body(a: Assessment, pngs: dict[str, bytes], controls: str = "") -> str:
    """The report's HTML body: headline (then controls, if any), charts (PNG as data: URIs), one table per view."""
    t = a.views["target"].iloc[0]
    done = t["completion_units"]
    behind = a.views["behind"]
    head = (f"<h1>职业技能提升行动考核 <code>A1</code></h1>{controls}"
            f"<p>统计截止 as of {html.escape(a.as_of.isoformat())}："
            f"三年目标 {int(t['target_person_times']):,} 人次，按进度应完成 {int(t['expected_person_times']):,} 人次，"
            f"实际 {int(t['person_times']):,} 人次"
            + (f"（完成率 {Decimal(int(done)) / 100:.2f}%）" if done is not None and not pd.isna(done) else "")
            + f"。<span class=\"behind\">未完成年度计划（通报）：{len(behind)} 项</span></p>")
    figs = "".join(f"<figure><img alt=\"{html.escape(cap)}\" src=\"data:image/png;base64,"
                   f"{base64.b64encode(pngs[stem]).decode()}\"><figcaption>{html.escape(cap)} "
                   f"<code>{html.escape(stem)}</code></figcaption></figure>" for stem, cap in CHARTS.items())
    tables = "".join(_table(n, a.views[n]) for n in SHEETS if n in a.views)
    return head + f"<div class=\"charts\">{figs}</div>" + tables


def html_page(a: Assessment, pngs: dict[str, bytes]) -> str:
    """assessment.html: one self-contained page (no script, no remote file)."""
    return (f"<!doctype html><html lang=\"zh-CN\"><head><meta charset=\"utf-8\"><title>职业技能提升行动考核 "
            f"{html.escape(a.as_of.isoformat())}</title><style>{STYLE}</style></head><body>{page_body(a, pngs)}"
            "</body></html>")


# ---- the workbook ----------------------------------------------------------------------------------------


def write_xlsx(path: Path | io.BytesIO, a: Assessment) -> None:
    """assessment.xlsx (a file, or a buffer): one sheet per view, Chinese header with the column beneath, numbers
    as numbers."""
    wb = xlsxwriter.Workbook(path if isinstance(path, io.BytesIO) else str(path),
                             {"strings_to_formulas": False, "strings_to_numbers": False, "strings_to_urls": False,
                              "in_memory": isinstance(path, io.BytesIO)})
    wb.set_properties({"created": dt.datetime.combine(a.as_of, dt.time()), "title": "职业技能提升行动考核"})
    base = {"font_name": "宋体", "font_size": 9}
    f = {"head": wb.add_format(base | {"bold": True, "text_wrap": True, "valign": "top", "bg_color": "#DDEBF7",
                                       "border": 1}),
         "text": wb.add_format(base), "int": wb.add_format(base | {"num_format": "#,##0"}),
         "year": wb.add_format(base | {"num_format": "0"}),
         "money": wb.add_format(base | {"num_format": "#,##0.00"}), "share": wb.add_format(base | {"num_format":
                                                                                                 "0.00%"})}
    for name in SHEETS:
        frame = a.views[name]
        ws = wb.add_worksheet(labels.load()["assessment_views"][name][:31])
        ws.set_row(0, 30)
        for j, c in enumerate(frame.columns):
            ws.set_column(j, j, 16)
            ws.write_string(0, j, f"{_zh_col(c)}\n{c}", f["head"])
        ws.freeze_panes(1, 0)
        ws.set_landscape()
        ws.set_paper(9)
        ws.fit_to_pages(1, 0)
        for i, row in enumerate(frame.astype(object).itertuples(index=False), start=1):
            for j, (c, v) in enumerate(zip(frame.columns, row, strict=True)):
                if v is None or (not isinstance(v, str) and pd.isna(v)):
                    continue
                kind = _kind(c)
                if kind == "money":
                    ws.write_number(i, j, float(Decimal(int(v)) / 100), f["money"])
                elif kind == "share":
                    ws.write_number(i, j, int(v) / RATE_SCALE, f["share"])
                elif c in LABELLED:
                    ws.write_string(i, j, _cell(c, v), f["text"])
                elif isinstance(v, (int,)) and not isinstance(v, bool):
                    ws.write_number(i, j, v, f["year" if c == "year" else "int"])
                else:
                    ws.write_string(i, j, str(v), f["text"])
    wb.close()


@dataclass(frozen=True)
class Rendered:
    """A1's report made: the figures, and each of its files but the CSV by name (charts, page, workbook)."""

    assessment: Assessment
    files: dict[str, bytes]


def render(a: Assessment) -> Rendered:
    """The report's files as bytes (the charts are most of the time: export makes them beside its extracts)."""
    pngs = charts(a)
    book = io.BytesIO()
    write_xlsx(book, a)
    return Rendered(a, {**{f"{stem}.png": png for stem, png in pngs.items()},
                        "assessment.html": html_page(a, pngs).encode("utf-8"), "assessment.xlsx": book.getvalue()})


def write(folder: Path, a: Assessment | Rendered, write_csv) -> dict:
    """Write the report (made here, or already) into folder (inside the night's folder being published);
    returns its counts."""
    made = a if isinstance(a, Rendered) else render(a)
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in made.files.items():
        (folder / name).write_bytes(content)
    write_csv(behind_extract(made.assessment), folder / "behind_plan.csv")
    return {"behind_plan": len(made.assessment.views["behind"]),
            "charts": sum(name.endswith(".png") for name in made.files)}
