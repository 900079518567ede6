"""Generate a realistic registry drop (CONTRACT.md) for Nanxun, deterministic for a seed.

Every R1-R6 path occurs (each reason code and hold, the uplift, catalog rows, school leavers, city payouts
that come after the district's), plus a small share of realistic defects, and some files are written in
GB18030 as Chinese government exports often are. Paths added after the first version draw from their own
random streams.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from stdnum.cn import ric, uscc

from .registries import REGISTRIES

NANXUN = "330503"
# 南浔区 towns and their township codes
TOWNS = np.array(["330503100", "330503101", "330503102", "330503103", "330503104",
                  "330503105", "330503106", "330503107", "330503108"])
SURNAMES = list("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董沈")
GIVEN = list("伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国文斌宇浩婷玉萍红梅鑫晨晓")
# (code, name, department that usually trains it)
OCCUPATIONS = [
    ("4-03-02-01", "中式烹调师", "HRSS"), ("4-10-01-05", "养老护理员", "HRSS"),
    ("4-10-01-06", "家政服务员", "COMMERCE"), ("4-10-03-01", "美容师", "HRSS"),
    ("4-01-02-02", "电子商务师", "COMMERCE"), ("6-31-01-03", "电工", "EMERG"),
    ("6-18-02-04", "焊工", "EMERG"), ("6-18-01-01", "车工", "ECON"),
    ("6-20-01-01", "装配钳工", "ECON"), ("6-04-02-01", "纺织染色工", "ECON"),
    ("5-01-01-01", "农艺工", "AGRI"), ("5-04-01-01", "水产养殖工", "AGRI"),
    ("4-10-01-02", "育婴员", "DPF"), ("4-07-05-01", "保安员", "VETS"),
    ("2-02-10-04", "计算机程序设计员", "EDU"),
]
SPECIAL = [("ZJ-NX-001", "湖羊养殖"), ("ZJ-NX-002", "鱼菜共生"), ("ZJ-NX-003", "电商直播"),
           ("ZJ-NX-004", "木地板安装")]
LEVEL_P = {5: 0.40, 4: 0.30, 3: 0.20, 2: 0.07, 1: 0.03}
_USCC_ALPHA = np.array(list("0123456789ABCDEFGHJKLMNPQRTUWXY"))
ENCODING = {  # file -> (encoding, line terminator)
    "social_insurance": ("utf-8-sig", "\n"), "unemployment_registrations": ("utf-8", "\n"),
    "certificates": ("utf-8-sig", "\n"), "veterans": ("gb18030", "\r\n"),
    "low_income": ("gb18030", "\r\n"), "training_classes": ("gb18030", "\r\n"),
    "class_enrollments": ("utf-8-sig", "\n"), "apprenticeships": ("utf-8-sig", "\n"),
    "affected_enterprises": ("utf-8-sig", "\n"), "city_payouts": ("utf-8-sig", "\n"),
    "subsidy_catalog": ("utf-8-sig", "\n"), "school_leavers": ("gb18030", "\r\n"),
    "training_projects": ("gb18030", "\r\n"), "training_institutions": ("utf-8-sig", "\n"),
    "objections": ("utf-8-sig", "\n"), "payee_accounts": ("gb18030", "\r\n"), "payment_results": ("utf-8", "\n"),
    "annual_plans": ("gb18030", "\r\n"),
}
INSTITUTIONS = ["南浔区职业技能培训中心", "湖州南浔技工学校", "南浔区农民田间学校", "南浔区成人文化技术学校",
                "湖州南浔众创职业培训学校", "南浔区练市镇成人学校", "湖州善琏湖笔培训学校", "南浔区菱湖职业技术学校"]
BANKS = ["中国工商银行湖州南浔支行", "中国农业银行湖州南浔支行", "浙江南浔农村商业银行", "湖州银行南浔支行"]
DEPARTMENTS = ["HRSS", "AGRI", "VETS", "ECON", "EMERG", "EDU", "DPF", "COMMERCE"]
DEFECT_SHARE = 0.003


@dataclass
class DropStats:
    """Row counts written per registry."""

    rows: dict[str, int]


def _dates(rng, lo: str, hi: str, n: int) -> np.ndarray:
    a, b = np.datetime64(lo, "D"), np.datetime64(hi, "D")
    return a + rng.integers(0, (b - a).astype(int) + 1, n).astype("timedelta64[D]")


def _text(d: np.ndarray) -> np.ndarray:
    out = np.datetime_as_string(d, unit="D").astype(object)
    out[np.isnat(d)] = ""
    return out


def _names(rng, n: int) -> np.ndarray:
    s = np.array(SURNAMES)[rng.integers(0, len(SURNAMES), n)].astype(object)
    g1 = np.array(GIVEN)[rng.integers(0, len(GIVEN), n)].astype(object)
    g2 = np.array(GIVEN)[rng.integers(0, len(GIVEN), n)].astype(object)
    two = rng.random(n) < 0.7
    return np.where(two, s + g1 + g2, s + g1)


def resident_ids(rng, n: int) -> np.ndarray:
    """n distinct valid Nanxun identity numbers of people born 1960-2002."""
    first, last = np.datetime64("1960-01-01"), np.datetime64("2002-12-31")
    days = (last - first).astype(int) + 1
    picks = rng.choice(days * 999, size=n, replace=False)
    births = first + (picks // 999).astype("timedelta64[D]")
    seq = picks % 999 + 1
    ymd = np.char.replace(np.datetime_as_string(births, unit="D"), "-", "")
    body = np.char.add(np.char.add(NANXUN, ymd), np.char.zfill(seq.astype(str), 3))
    return np.array([b + ric.calc_check_digit(b + "0") for b in body.tolist()], dtype=object)


def credit_codes(rng, n: int) -> np.ndarray:
    """n distinct valid unified social credit codes registered in Nanxun."""
    chars = _USCC_ALPHA[rng.integers(0, len(_USCC_ALPHA), (n, 9))]
    bodies = ["91" + NANXUN + "".join(row) for row in chars.tolist()]
    codes = list(dict.fromkeys(b + uscc.calc_check_digit(b + "0") for b in bodies))
    return np.array(codes, dtype=object)


def _pick(rng, values, n, p=None):
    values = np.asarray(values, dtype=object)
    return values[rng.choice(len(values), n, p=p)]


def _build(rng, n: int) -> dict[str, pd.DataFrame]:
    pid = resident_ids(rng, n)
    name = _names(rng, n)
    town = TOWNS[rng.integers(0, len(TOWNS), n)]
    frames: dict[str, pd.DataFrame] = {}

    # employers: mostly enterprises; a few staffed public institutions (R1 check 3)
    n_emp = max(30, n // 40)
    emp_code = credit_codes(rng, n_emp)
    n_emp = len(emp_code)
    emp_name = np.array([f"湖州南浔{i:05d}{k}" for i, k in
                         zip(range(n_emp), _pick(rng, ["纺织有限公司", "木业有限公司", "电梯股份有限公司",
                                                        "机械有限公司", "街道社区服务中心", "中学"], n_emp),
                             strict=True)], dtype=object)
    emp_cat = _pick(rng, ["enterprise", "public_institution_staffed", "public_institution_contract",
                          "individual"], n_emp, p=[0.84, 0.05, 0.05, 0.06])

    # social insurance: 72% insured, 15% of those with an earlier, closed episode too
    ins = np.flatnonzero(rng.random(n) < 0.72)
    again = ins[rng.random(len(ins)) < 0.15]
    person = np.concatenate([ins, again])
    m = len(person)
    emp = rng.integers(0, n_emp, m)
    start = _dates(rng, "2008-01-01", "2021-06-30", m)
    first_part = len(ins)
    end = np.full(m, np.datetime64("NaT"), dtype="datetime64[D]")
    closes = rng.random(m) < 0.2
    end[closes] = start[closes] + rng.integers(30, 1500, closes.sum()).astype("timedelta64[D]")
    # the second episode of a person is an earlier, finished job
    end[first_part:] = start[:first_part][np.searchsorted(ins, again)] - np.timedelta64(1, "D")
    start[first_part:] = end[first_part:] - rng.integers(200, 2000, m - first_part).astype("timedelta64[D]")
    frames["social_insurance"] = pd.DataFrame({
        "record_id": [f"SI{i:08d}" for i in range(m)], "person_id": pid[person], "name": name[person],
        "employer_credit_code": emp_code[emp], "employer_name": emp_name[emp],
        "employer_category": emp_cat[emp], "start_date": _text(start), "end_date": _text(end),
        "town_code": town[person],
    })

    # unemployment registrations (城乡失业人员), veterans, low-income households: the R2 groups
    un = np.flatnonzero(rng.random(n) < 0.07)
    reg_on = _dates(rng, "2017-01-01", "2021-10-31", len(un))
    ended = np.where(rng.random(len(un)) < 0.5,
                     reg_on + rng.integers(30, 700, len(un)).astype("timedelta64[D]"), np.datetime64("NaT"))
    frames["unemployment_registrations"] = pd.DataFrame({
        "record_id": [f"UR{i:08d}" for i in range(len(un))], "person_id": pid[un], "name": name[un],
        "registered_on": _text(reg_on), "ended_on": _text(ended.astype("datetime64[D]")),
        "area": _pick(rng, ["urban", "rural"], len(un), p=[0.45, 0.55]), "town_code": town[un],
    })
    vet = np.flatnonzero(rng.random(n) < 0.02)
    frames["veterans"] = pd.DataFrame({
        "record_id": [f"VT{i:07d}" for i in range(len(vet))], "person_id": pid[vet], "name": name[vet],
        "discharged_on": _text(_dates(rng, "1998-01-01", "2021-09-30", len(vet))), "town_code": town[vet],
    })
    li = np.flatnonzero(rng.random(n) < 0.05)
    vf = _dates(rng, "2016-01-01", "2021-06-30", len(li))
    vt = np.where(rng.random(len(li)) < 0.4, vf + rng.integers(180, 1200, len(li)).astype("timedelta64[D]"),
                  np.datetime64("NaT")).astype("datetime64[D]")
    frames["low_income"] = pd.DataFrame({
        "record_id": [f"LI{i:08d}" for i in range(len(li))], "person_id": pid[li], "name": name[li],
        "household_id": [f"HH{h:07d}" for h in rng.integers(0, max(1, n // 3), len(li))],
        "category": _pick(rng, ["low_income_rural_household", "urban_minimum_living",
                                "zero_employment_family", "employment_difficulty", "disabled"],
                          len(li), p=[0.35, 0.2, 0.1, 0.25, 0.1]),
        "valid_from": _text(vf), "valid_to": _text(vt),
    })

    # training classes: filed before they start, except a few (五: 开班备案 first)
    n_cls = max(12, n // 120)
    occ_i = rng.integers(0, len(OCCUPATIONS), n_cls)
    cls_start = _dates(rng, "2018-09-01", "2022-03-31", n_cls)
    cls_end = cls_start + rng.integers(5, 60, n_cls).astype("timedelta64[D]")
    long_cls = rng.random(n_cls) < 0.08
    cls_end[long_cls] = cls_start[long_cls] + rng.integers(200, 400, long_cls.sum()).astype("timedelta64[D]")
    cls_end[np.argmax(cls_start)] = cls_start.max() + np.timedelta64(300, "D")  # at least one ends late
    late = rng.random(n_cls) < 0.05
    # at least one late filing inside the window, so even a small drop exercises R1 check 5
    in_window = (cls_start >= np.datetime64("2019-01-01")) & (cls_start <= np.datetime64("2021-10-31"))
    late[np.flatnonzero(in_window)[:1]] = True
    filed = cls_start - rng.integers(1, 30, n_cls).astype("timedelta64[D]")
    filed[late] = cls_start[late] + rng.integers(0, 3, late.sum()).astype("timedelta64[D]")
    cls_dept = np.where(rng.random(n_cls) < 0.7, np.array([o[2] for o in OCCUPATIONS], dtype=object)[occ_i], "HRSS")
    cls_level = rng.choice(list(LEVEL_P), n_cls, p=list(LEVEL_P.values()))
    class_ids = np.array([f"NX{d.astype(object).year}-{i:05d}" for i, d in enumerate(cls_start)], dtype=object)
    frames["training_classes"] = pd.DataFrame({
        "class_id": class_ids, "department_code": cls_dept,
        "institution_name": _pick(rng, ["南浔区职业技能培训中心", "湖州南浔技工学校", "南浔区农民田间学校",
                                        "南浔区成人文化技术学校"], n_cls),
        "occupation_code": np.array([o[0] for o in OCCUPATIONS], dtype=object)[occ_i],
        "level": cls_level.astype(str), "training_kind": _pick(rng, ["skill_upgrade", "employment_skill",
                                                                     "safety", "entrepreneurship"], n_cls),
        "filed_on": _text(filed), "start_date": _text(cls_start), "end_date": _text(cls_end),
        "town_code": TOWNS[rng.integers(0, len(TOWNS), n_cls)],
    })

    # certificates: 35% of people hold 1-5; multiple ones exercise the cap and the one-per-level rule
    holders = np.flatnonzero(rng.random(n) < 0.35)
    per = rng.choice([1, 2, 3, 4, 5], len(holders), p=[0.70, 0.17, 0.07, 0.04, 0.02])
    cp = np.repeat(holders, per)
    k = len(cp)
    rank = np.arange(k) - np.repeat(np.cumsum(per) - per, per)
    ctype = _pick(rng, ["vocational_qualification", "skill_level", "special_ability"], k, p=[0.4, 0.5, 0.1])
    occ = rng.integers(0, len(OCCUPATIONS), k)
    occ_code = np.array([o[0] for o in OCCUPATIONS], dtype=object)[occ]
    occ_name = np.array([o[1] for o in OCCUPATIONS], dtype=object)[occ]
    level = rng.choice(list(LEVEL_P), k, p=list(LEVEL_P.values())).astype(object).astype(str)
    issued = _dates(rng, "2018-06-01", "2022-06-30", k)
    cls = np.full(k, "", dtype=object)
    in_class = (rng.random(k) < 0.55) & (ctype != "special_ability")
    ci = rng.integers(0, n_cls, k)
    cls[in_class] = class_ids[ci[in_class]]
    occ_code[in_class] = frames["training_classes"]["occupation_code"].to_numpy()[ci[in_class]]
    level[in_class] = cls_level[ci[in_class]].astype(str)
    issued[in_class] = cls_end[ci[in_class]] + rng.integers(7, 45, in_class.sum()).astype("timedelta64[D]")
    sp = ctype == "special_ability"
    spi = rng.integers(0, len(SPECIAL), k)
    occ_code[sp] = np.array([s[0] for s in SPECIAL], dtype=object)[spi[sp]]
    occ_name[sp] = np.array([s[1] for s in SPECIAL], dtype=object)[spi[sp]]
    level[sp] = ""
    # people with 4-5 certificates earn them within one year: R1 check 9 (annual cap)
    busy = np.repeat(per >= 4, per)
    first_of = np.repeat(np.cumsum(per) - per, per)
    issued[busy & ~in_class] = (issued[first_of][busy & ~in_class].astype("datetime64[Y]")
                                + rng.integers(0, 330, (busy & ~in_class).sum()).astype("timedelta64[D]"))
    # some repeat an earlier occupation and level: R1 check 8
    dup = (rank > 0) & (rng.random(k) < 0.12) & ~in_class & ~sp & ~sp[np.maximum(np.arange(k) - 1, 0)]
    prev = np.flatnonzero(dup) - 1
    occ_code[dup], occ_name[dup], level[dup] = occ_code[prev], occ_name[prev], level[prev]
    status = np.where(rng.random(k) < 0.02, "revoked", "valid")
    cert_no = np.array([f"{d.astype(object).year % 100:02d}3305{i:09d}" for i, d in enumerate(issued)],
                       dtype=object)
    frames["certificates"] = pd.DataFrame({
        "certificate_no": cert_no, "person_id": pid[cp], "name": name[cp], "certificate_type": ctype,
        "occupation_code": occ_code, "occupation_name": occ_name, "level": level, "issued_on": _text(issued),
        "issuer": np.where(sp, "湖州市南浔区人力资源和社会保障局", "湖州市职业技能鉴定中心"),
        "training_class_id": cls, "status": status,
    })

    # rosters (实名制): most class certificate holders passed; some are missing or failed (R1 check 6)
    wc = np.flatnonzero(in_class)
    on_roster = wc[rng.random(len(wc)) < 0.94]
    roster = pd.DataFrame({"class_id": cls[on_roster], "person_id": pid[cp[on_roster]],
                           "name": name[cp[on_roster]],
                           "passed": np.where(rng.random(len(on_roster)) < 0.96, "true", "false")})
    # trainees who earned no certificate (yet), some from low-income households
    extra_n = max(10, n // 25)
    extra_p = np.where(rng.random(extra_n) < 0.3, li[rng.integers(0, max(1, len(li)), extra_n)] if len(li) else 0,
                       rng.integers(0, n, extra_n))
    extra = pd.DataFrame({"class_id": class_ids[rng.integers(0, n_cls, extra_n)], "person_id": pid[extra_p],
                          "name": name[extra_p], "passed": np.where(rng.random(extra_n) < 0.6, "true", "false")})
    roster = pd.concat([roster, extra], ignore_index=True).drop_duplicates(["class_id", "person_id"])
    attendance = rng.integers(3, 45, len(roster))
    attendance[rng.random(len(roster)) < 0.03] = 0  # enrolled, never came (R6 no_attendance)
    roster.insert(3, "attendance_days", attendance.astype(str))
    # a few roster entries name a class that was never filed (R6 class_not_filed_in_advance)
    ghost = rng.random(len(roster)) < 0.01
    roster.loc[ghost, "class_id"] = [f"NX2020-9{i:04d}" for i in range(int(ghost.sum()))]
    roster = pd.concat([roster, _overlapping_entries(roster, set(pid[li]) if len(li) else set(), class_ids,
                                                     cls_start, cls_end)], ignore_index=True)
    frames["class_enrollments"] = _attendance_within_class(roster, class_ids, cls_start, cls_end)

    # the city already paid a few (R1 check 7): by certificate number or by occupation and level
    paid = np.flatnonzero((rng.random(k) < 0.03) & ~sp)
    same_no = rng.random(len(paid)) < 0.5
    frames["city_payouts"] = pd.DataFrame({
        "person_id": pid[cp[paid]], "occupation_code": occ_code[paid], "level": level[paid],
        "certificate_no": np.where(same_no, cert_no[paid], np.array([f"HZ{i:010d}" for i in range(len(paid))],
                                                                    dtype=object)),
        "paid_on": _text(issued[paid] + np.timedelta64(20, "D")),
        "amount": _pick(rng, ["1000.00", "1500.00", "2000.00"], len(paid)),
    })

    # employers hurt by the trade friction (R3); some leave the rate blank (default applies)
    aff = rng.choice(n_emp, max(3, n_emp // 15), replace=False)
    frames["affected_enterprises"] = pd.DataFrame({
        "employer_credit_code": emp_code[aff], "employer_name": emp_name[aff],
        "listed_on": _text(_dates(rng, "2018-10-01", "2020-12-31", len(aff))),
        "uplift_rate": _pick(rng, ["", "0.10", "0.15", "0.20", "0.30", "0.125"], len(aff)),
    })

    # apprenticeship agreements (R4/R5): every path, including years ending exactly on the end date
    n_ap = max(40, n // 150)
    ap = rng.choice(n, n_ap, replace=False)
    kind = _pick(rng, ["employee", "student"], n_ap, p=[0.6, 0.4])
    ap_start = _dates(rng, "2018-07-01", "2022-03-31", n_ap)
    ap_end = ap_start + rng.integers(200, 1300, n_ap).astype("timedelta64[D]")
    shape = rng.random(n_ap)
    ap_end[shape < 0.25] = np.datetime64("NaT")
    exact = (shape >= 0.25) & (shape < 0.40)  # ends on an anniversary: the last year completes on the end date
    years = rng.integers(1, 4, n_ap)
    ap_end[exact] = np.array([_anniversary(d, y) for d, y in zip(ap_start[exact], years[exact], strict=True)],
                             dtype="datetime64[D]")
    short = (shape >= 0.40) & (shape < 0.50)  # students who left within the first weeks
    kind[short] = "student"
    ap_end[short] = ap_start[short] + rng.integers(10, 70, short.sum()).astype("timedelta64[D]")
    allowance = np.where(kind == "student", _pick(rng, ["1800.00", "2200.00", "2500.00", "300.00", "0.00", ""],
                                                  n_ap, p=[0.3, 0.25, 0.2, 0.15, 0.05, 0.05]), "")
    frames["apprenticeships"] = pd.DataFrame({
        "agreement_id": [f"AP{i:06d}" for i in range(n_ap)], "person_id": pid[ap], "name": name[ap],
        "employer_credit_code": emp_code[rng.integers(0, n_emp, n_ap)],
        "school_name": _pick(rng, ["湖州南浔技工学校", "湖州交通技师学院", "湖州职业技术学院"], n_ap),
        "apprentice_kind": kind, "start_date": _text(ap_start), "end_date": _text(ap_end),
        "monthly_allowance": allowance, "department_code": _pick(rng, ["HRSS", "ECON", "EDU"], n_ap),
    })

    # the subsidy catalog (补贴目录清单): a few occupations re-priced from mid-2020, special abilities too
    cat = []
    for code, _, _ in OCCUPATIONS[:4]:
        for ctype in ("vocational_qualification", "skill_level"):
            for lvl, amount in (("5", "1100.00"), ("4", "1650.00")):
                cat.append((code, ctype, lvl, amount, "2020-07-01", ""))
    for (code, _), amount in zip(SPECIAL, ["600.00", "1000.00", "800.00", "500.00"], strict=True):
        cat.append((code, "special_ability", "", amount, "2019-01-01", "2021-06-30"))
    frames["subsidy_catalog"] = pd.DataFrame(cat, columns=["occupation_code", "certificate_type", "level", "amount",
                                                           "effective_from", "effective_to"])
    _apprentice_paths(frames, n)
    _training_projects(frames, n)
    _city_payouts_later(frames, issued, paid)
    _school_leavers(frames, pid, name, class_ids, n)
    _payee_accounts(frames, pid, name, n)
    _objections(frames, n)
    # bank results answer instructions the warehouse issued: a first drop has none (tests write them)
    frames["payment_results"] = pd.DataFrame(columns=list(REGISTRIES["payment_results"].columns))
    return frames


def _payee_accounts(frames: dict[str, pd.DataFrame], pid, name, n: int) -> None:
    """社保卡金融账户 (P3): most people have one; some changed bank (the old account closed); some have none yet,
    so their payouts wait. Its own random stream."""
    rng = np.random.default_rng(n + 70001)
    has = rng.random(len(pid)) < 0.8
    who = np.flatnonzero(has)
    k = len(who)
    opened = _dates(rng, "2012-01-01", "2021-06-30", k)
    digits = rng.integers(10**15, 10**16 - 1, k, dtype=np.int64)
    rows = pd.DataFrame({"person_id": pid[who], "name": name[who], "bank_name": _pick(rng, BANKS, k),
                         "account_no": ["62" + str(d) for d in digits], "valid_from": _text(opened), "valid_to": ""})
    moved = rng.random(k) < 0.05  # changed bank: the old account closed the day before the new one opened
    later = opened[moved] + rng.integers(200, 900, int(moved.sum())).astype("timedelta64[D]")
    new = rows.loc[moved].assign(valid_from=_text(later), bank_name=_pick(rng, BANKS, int(moved.sum())),
                                 account_no=["62" + str(d) for d in rng.integers(10**15, 10**16 - 1, int(moved.sum()),
                                                                                   dtype=np.int64)])
    rows.loc[moved, "valid_to"] = _text(later - np.timedelta64(1, "D"))
    frames["payee_accounts"] = pd.concat([rows, new], ignore_index=True)


def _objections(frames: dict[str, pd.DataFrame], n: int) -> None:
    """公示异议 (P2): a few certificates' claims drew an objection in June 2022: some still open, some upheld,
    some dismissed. Its own random stream."""
    rng = np.random.default_rng(n + 80021)
    certs = frames["certificates"]
    # objections are lodged against publicised claims: certificates of insured people, valid, in the window
    likely = certs.loc[certs["person_id"].isin(frames["social_insurance"]["person_id"]) & (certs["status"] == "valid")
                       & certs["issued_on"].between("2019-01-01", "2021-12-31")]
    k = min(len(likely), max(12, n // 100))
    picked = likely.iloc[rng.choice(len(likely), k, replace=False)]
    lodged = _dates(rng, "2022-06-01", "2022-06-20", k)
    outcome = _pick(rng, ["", "upheld", "dismissed"], k, p=[0.4, 0.3, 0.3])
    resolved = np.where(outcome != "", _text(lodged + rng.integers(1, 9, k).astype("timedelta64[D]")), "")
    stype = np.where(picked["certificate_type"] == "special_ability", "special_ability", "skill_upgrade")
    frames["objections"] = pd.DataFrame({
        "objection_id": [f"YY{i:05d}" for i in range(k)], "subsidy_type": stype,
        "reference": picked["certificate_no"].to_numpy(), "person_id": picked["person_id"].to_numpy(),
        "lodged_on": _text(lodged), "resolved_on": resolved, "outcome": outcome})


def _training_projects(frames: dict[str, pd.DataFrame], n: int) -> None:
    """R7: qualified institutions (some lapse, some renew), the classes' institutions and projects, project
    filings for every department (some filed after their classes, some with budgets too small for their
    trainees), classes of other departments without a project, and catalog rows pricing classes by
    occupation and level (a few occupations left out). Its own random stream."""
    rng = np.random.default_rng(n + 70001)
    cls = frames["training_classes"].copy()
    k = len(cls)
    n_inst = max(4, k // 8)
    codes = credit_codes(rng, n_inst)
    n_inst = len(codes)
    names = np.array([f"{INSTITUTIONS[i % len(INSTITUTIONS)]}{'' if i < len(INSTITUTIONS) else i}"
                      for i in range(n_inst)], dtype=object)
    q_from = _dates(rng, "2015-01-01", "2018-12-31", n_inst)
    lapsed = rng.random(n_inst) < 0.15
    lapsed[n_inst // 2] = True  # at least one institution whose qualification lapsed mid-plan
    q_to = np.where(lapsed, _dates(rng, "2019-06-01", "2021-06-30", n_inst), np.datetime64("NaT"))
    renewed = lapsed & (rng.random(n_inst) < 0.4)
    rows = [pd.DataFrame({"institution_credit_code": codes, "institution_name": names, "qualified_from": _text(q_from),
                          "qualified_to": _text(q_to.astype("datetime64[D]")),
                          "bank_name": _pick(rng, BANKS, n_inst),
                          "account_no": [str(x) for x in rng.integers(10**15, 10**18, n_inst)]})]
    again = q_to[renewed].astype("datetime64[D]") + rng.integers(60, 200, int(renewed.sum())).astype("timedelta64[D]")
    rows.append(rows[0].loc[renewed].assign(qualified_from=_text(again), qualified_to=""))
    frames["training_institutions"] = pd.concat(rows, ignore_index=True)

    inst = rng.integers(0, n_inst, k)
    cls["institution_credit_code"] = codes[inst]
    cls["institution_name"] = names[inst]
    hrss = cls["department_code"].eq("HRSS").to_numpy()
    with_project = np.where(hrss, rng.random(k) < 0.3, rng.random(k) < 0.88)
    # projects: a department's classes of one occupation and level share a project filed before them
    key = cls["department_code"] + "|" + cls["occupation_code"] + "|" + cls["level"]
    groups = key[with_project].drop_duplicates()
    project_of = {g: f"XM{i:05d}" for i, g in enumerate(groups)}
    cls["project_id"] = [project_of[g] if w else "" for g, w in zip(key, with_project, strict=True)]
    filed = pd.to_datetime(cls["filed_on"], errors="coerce")
    first_filed = filed[with_project].groupby(key[with_project]).min()
    size = key[with_project].value_counts()
    m = len(groups)
    dept, occ, lvl = (groups.str.split("|").str[i].to_numpy() for i in range(3))
    standard = rng.choice([800, 1000, 1200, 1500, 1800, 2400], m) * 100
    planned = (size.reindex(groups).to_numpy() * rng.integers(25, 45, m)).astype("int64")
    # most budgets cover the planned trainees; some were filed too small (over_filed_budget holds)
    short = rng.random(m) < 0.2
    short[:1] = True
    budget = planned * standard * np.where(short, rng.uniform(0.05, 0.3, m), rng.uniform(1.0, 1.3, m))
    filed_on = first_filed.reindex(groups).to_numpy().astype("datetime64[D]") - rng.integers(
        5, 90, m).astype("timedelta64[D]")
    late = rng.random(m) < 0.08
    late[m // 2] = True  # at least one project filed after its first class (project_not_filed)
    filed_on[late] = filed_on[late] + np.timedelta64(120, "D")
    frames["training_projects"] = pd.DataFrame({
        "project_id": [project_of[g] for g in groups], "department_code": dept,
        "title": [f"{d}职业技能提升培训项目{i:03d}" for i, d in enumerate(dept)], "occupation_code": occ,
        "level": lvl, "standard_per_trainee": [f"{x // 100}.00" for x in standard],
        "planned_trainees": planned.astype(str), "budget": [f"{int(b) // 100}.{int(b) % 100:02d}" for b in budget],
        "filed_on": _text(filed_on)})
    frames["training_classes"] = cls[["class_id", "department_code", "project_id", "institution_name",
                                      "institution_credit_code", "occupation_code", "level", "training_kind",
                                      "filed_on", "start_date", "end_date", "town_code"]]
    # the catalog prices training by occupation and level (all but the last two occupations)
    priced = [o[0] for o in OCCUPATIONS[:-2]]
    by_level = {"5": "1000.00", "4": "1500.00", "3": "2000.00", "2": "3000.00", "1": "4000.00"}
    rows = [(code, "skill_level", lv, amount, "2019-01-01", "") for code in priced for lv, amount in by_level.items()]
    extra = pd.DataFrame(rows, columns=frames["subsidy_catalog"].columns)
    catalog = frames["subsidy_catalog"]
    have = catalog.set_index(["occupation_code", "certificate_type", "level", "effective_from"]).index
    extra = extra.loc[~extra.set_index(["occupation_code", "certificate_type", "level", "effective_from"]).index
                      .isin(have)]
    frames["subsidy_catalog"] = pd.concat([catalog, extra], ignore_index=True)
    _eager_trainees(frames, rng)
    _supervision_signals(frames, rng, codes[0])


def _supervision_signals(frames: dict[str, pd.DataFrame], rng, generous: str) -> None:
    """资金监管 signals: a few certificates name a class that trained another occupation, and one institution
    passes every trainee of its classes (supervision.csv)."""
    certs = frames["certificates"].copy()
    named = np.flatnonzero(certs["training_class_id"].ne("").to_numpy() & certs["level"].ne("").to_numpy())
    other = named[rng.random(len(named)) < 0.01][:50]
    if len(named) and not len(other):
        other = named[:1]
    codes = np.array([o[0] for o in OCCUPATIONS], dtype=object)
    current = certs.loc[certs.index[other], "occupation_code"].to_numpy()
    certs.loc[certs.index[other], "occupation_code"] = np.where(current == codes[0], codes[1], codes[0])
    frames["certificates"] = certs
    cls, roster = frames["training_classes"], frames["class_enrollments"].copy()
    theirs = roster["class_id"].isin(cls.loc[cls["institution_credit_code"] == generous, "class_id"])
    roster.loc[theirs, "passed"] = "true"
    frames["class_enrollments"] = roster


def _eager_trainees(frames: dict[str, pd.DataFrame], rng) -> None:
    """R7's per-person limits: a class repeated a year later (same occupation, level, project and institution)
    whose trainees include people who passed the first (duplicate_occupation_level), and a few people on four
    or more classes that do not overlap and end in the same year (annual_cap_reached)."""
    cls = frames["training_classes"]
    roster = frames["class_enrollments"]
    start, end = pd.to_datetime(cls["start_date"]), pd.to_datetime(cls["end_date"])
    inside = ((start >= "2019-01-01") & (end <= "2020-12-31")).to_numpy()
    base = cls.loc[inside].head(max(1, len(cls) // 40))
    repeat = base.assign(class_id=base["class_id"] + "R",
                         start_date=(pd.to_datetime(base["start_date"]) + pd.DateOffset(years=1)).dt.strftime(
                             "%Y-%m-%d"),
                         end_date=(pd.to_datetime(base["end_date"]) + pd.DateOffset(years=1)).dt.strftime("%Y-%m-%d"),
                         filed_on=(pd.to_datetime(base["filed_on"]) + pd.DateOffset(years=1)).dt.strftime("%Y-%m-%d"))
    again = roster.loc[roster["class_id"].isin(base["class_id"])].copy()
    again = again.assign(class_id=again["class_id"] + "R", passed="true")
    # people on many short classes in one year: the classes of 2020, taken one after another
    year = cls.loc[(start.dt.year == 2020).to_numpy() & ((end - start).dt.days < 90).to_numpy()].copy()
    year = year.assign(_s=pd.to_datetime(year["start_date"]), _e=pd.to_datetime(year["end_date"])).sort_values("_s")
    chosen, last = [], pd.Timestamp.min
    for cid, s_, e_ in zip(year["class_id"], year["_s"], year["_e"], strict=True):
        if s_ > last:
            chosen.append(cid)
            last = e_
    rows = []
    if len(chosen) >= 4:
        people = roster.drop_duplicates("person_id")
        people = people.iloc[rng.choice(len(people), min(3, len(people)), replace=False)]
        for person, name in zip(people["person_id"], people["name"], strict=True):
            rows += [{"class_id": c, "person_id": person, "name": name, "attendance_days": "1", "passed": "true"}
                     for c in chosen]
    busy = pd.DataFrame(rows, columns=roster.columns)
    extra = pd.concat([again, busy], ignore_index=True)
    extra = extra.loc[~extra.set_index(["class_id", "person_id"]).index.isin(
        roster.set_index(["class_id", "person_id"]).index)].drop_duplicates(["class_id", "person_id"])
    frames["training_classes"] = pd.concat([cls, repeat], ignore_index=True)
    frames["class_enrollments"] = pd.concat([roster, extra], ignore_index=True)


def _at_least_one(rng, mask: np.ndarray, share: float, among: np.ndarray) -> np.ndarray:
    """mask | a random share of `among` | its first element (so even a small drop has the path)."""
    pick = mask.copy()
    pick |= among & (rng.random(len(mask)) < share)
    first = np.flatnonzero(among)
    if len(first):
        pick[first[0]] = True
    return pick


def _apprentice_paths(frames: dict[str, pd.DataFrame], n: int) -> None:
    """R4/R5 revision 2: most employee apprentices have been in post with their employer for a year (an
    insurance episode is added where the drop has none), some not; a few agreements name no school; a few
    people hold a second, concurrent employee agreement (three years per person) or a second student
    placement (once per person). Its own random stream."""
    rng = np.random.default_rng(n + 30011)
    ap, si = frames["apprenticeships"].copy(), frames["social_insurance"]
    emp = (ap["apprentice_kind"] == "employee").to_numpy()
    start = pd.to_datetime(ap["start_date"])
    open_end = ap["end_date"].eq("").to_numpy()
    early = ((start >= "2019-01-01") & (start <= "2019-12-31")).to_numpy()
    concurrent = _at_least_one(rng, np.zeros(len(ap), bool), 0.15, emp & open_end & early)
    in_post = (emp & (rng.random(len(ap)) < 0.85)) | concurrent
    since = start - pd.to_timedelta(rng.integers(380, 2500, len(ap)), unit="D")
    added = pd.DataFrame({
        "record_id": [f"SIA{i:07d}" for i in range(int(in_post.sum()))],
        "person_id": ap.loc[in_post, "person_id"].to_numpy(), "name": ap.loc[in_post, "name"].to_numpy(),
        "employer_credit_code": ap.loc[in_post, "employer_credit_code"].to_numpy(), "employer_name": "学徒培养企业",
        "employer_category": "enterprise", "start_date": since[in_post].dt.strftime("%Y-%m-%d").to_numpy(),
        "end_date": "", "town_code": TOWNS[rng.integers(0, len(TOWNS), int(in_post.sum()))]})
    frames["social_insurance"] = pd.concat([si, added], ignore_index=True)
    none = np.zeros(len(ap), bool)
    no_school = _at_least_one(rng, none, 0.04, emp & ~concurrent) | _at_least_one(rng, none, 0.04, ~emp)
    ap.loc[no_school, "school_name"] = ""
    end = pd.to_datetime(ap["end_date"])
    allowance = pd.to_numeric(ap["monthly_allowance"], errors="coerce").fillna(0).to_numpy()
    # a second placement once the first, paid one ended: both would be payable, only one is
    served = ((end - start).dt.days >= 62) & (end <= "2021-06-30")
    payable = ~emp & ~no_school & (allowance > 0) & (start >= "2019-01-01").to_numpy() & served.to_numpy()
    second_student = _at_least_one(rng, none, 0.15, payable)
    twin = ap.loc[concurrent].assign(start_date=(start[concurrent] + pd.to_timedelta(
        rng.integers(90, 270, int(concurrent.sum())), unit="D")).dt.strftime("%Y-%m-%d").to_numpy())
    placement = ap.loc[second_student].assign(start_date=ap.loc[second_student, "end_date"].to_numpy(), end_date="")
    again = pd.concat([twin, placement], ignore_index=True)
    again["agreement_id"] = [f"AP9{i:05d}" for i in range(len(again))]
    frames["apprenticeships"] = pd.concat([ap, again], ignore_index=True)


def _city_payouts_later(frames: dict[str, pd.DataFrame], issued: np.ndarray, paid: np.ndarray) -> None:
    """Some city payouts are made months after the certificate: a night between the two may have paid the
    district's subsidy already (R1 check 6: city_overlaps.csv). Its own random stream."""
    city = frames["city_payouts"]
    rng = np.random.default_rng(len(city) + 50021)
    late = rng.random(len(city)) < 0.4
    when = issued[paid] + np.where(late, rng.integers(150, 400, len(city)), 20).astype("timedelta64[D]")
    frames["city_payouts"] = city.assign(paid_on=_text(when))


def _school_leavers(frames: dict[str, pd.DataFrame], pid, name, class_ids, n: int) -> None:
    """两后生 (R6): young people who left school after junior or senior secondary, rural or urban; some urban
    ones from an urban minimum-living household (a parent's record in the same household), and trainees on
    the rosters. Its own random stream."""
    rng = np.random.default_rng(n + 60013)
    born = pd.to_datetime(pd.Series(pid).str[6:14], format="%Y%m%d").to_numpy(dtype="datetime64[D]")
    young = np.flatnonzero(born >= np.datetime64("1996-01-01"))  # 15-19 at graduation, by 2021
    k = min(len(young), max(12, n // 150))
    who = rng.choice(young, k, replace=False)
    hukou = np.where(rng.random(k) < 0.55, "rural", "urban")
    years = born[who].astype("datetime64[Y]") + rng.integers(15, 20, k).astype("timedelta64[Y]")
    graduated = years.astype("datetime64[D]") + rng.integers(170, 200, k).astype("timedelta64[D]")  # summer
    graduated = np.minimum(graduated, np.datetime64("2021-07-10"))
    frames["school_leavers"] = pd.DataFrame({
        "record_id": [f"SL{i:07d}" for i in range(k)], "person_id": pid[who], "name": name[who],
        "school_name": _pick(rng, ["南浔区练市镇初级中学", "南浔区菱湖中学", "湖州市南浔高级中学"], k),
        "education_level": _pick(rng, ["junior_secondary", "senior_secondary"], k, p=[0.6, 0.4]),
        "graduated_on": _text(graduated), "hukou": hukou})
    # urban leavers: half from an urban minimum-living household (the record is a parent's), a few of them
    # with a household record that is not urban minimum living
    urban = np.flatnonzero(hukou == "urban")
    homes = urban[rng.random(len(urban)) < 0.6]
    parents = rng.choice(n, len(homes), replace=False)
    low = frames["low_income"]
    households = [f"HHS{i:06d}" for i in range(len(homes))]
    category = np.where(rng.random(len(homes)) < 0.8, "urban_minimum_living", "zero_employment_family")
    parent_rows = pd.DataFrame({
        "record_id": [f"LIS{i:07d}" for i in range(len(homes))], "person_id": pid[parents], "name": name[parents],
        "household_id": households, "category": category,
        "valid_from": _text(_dates(rng, "2014-01-01", "2019-06-30", len(homes))), "valid_to": ""})
    own_rows = pd.DataFrame({  # the leaver's own record in the household (an earlier, expired benefit)
        "record_id": [f"LIC{i:07d}" for i in range(len(homes))], "person_id": pid[who[homes]],
        "name": name[who[homes]], "household_id": households, "category": "urban_minimum_living",
        "valid_from": "2012-01-01", "valid_to": "2013-12-31"})
    frames["low_income"] = pd.concat([low, parent_rows, own_rows], ignore_index=True)
    trainees = who[rng.random(k) < 0.8]
    rows = pd.DataFrame({"class_id": class_ids[rng.integers(0, len(class_ids), len(trainees))],
                         "person_id": pid[trainees], "name": name[trainees],
                         "attendance_days": rng.integers(1, 6, len(trainees)).astype(str),
                         "passed": np.where(rng.random(len(trainees)) < 0.7, "true", "false")})
    roster = frames["class_enrollments"]
    rows = rows.loc[~rows.set_index(["class_id", "person_id"]).index.isin(
        roster.set_index(["class_id", "person_id"]).index)].drop_duplicates(["class_id", "person_id"])
    frames["class_enrollments"] = pd.concat([roster, rows], ignore_index=True)


def _anniversary(start: np.datetime64, years: int) -> np.datetime64:
    """start + years calendar years (29 February falls back to the 28th)."""
    d = pd.Timestamp(start)
    return np.datetime64((d + pd.DateOffset(years=int(years))).date(), "D")


def _defects(rng, name: str, df: pd.DataFrame) -> pd.DataFrame:
    """Inject the defects real registries have: bad check characters, unknown codes, impossible dates, dup keys."""
    n = len(df)
    if n < 20:
        return df
    df = df.copy()
    k = max(1, int(n * DEFECT_SHARE))
    if "person_id" in df:
        rows = rng.choice(n, k, replace=False)
        ids = df["person_id"].to_numpy().copy()
        for r in rows.tolist():
            v = ids[r]
            ids[r] = v[:17] + ("0" if v[17] != "0" else "1")
        df["person_id"] = ids
    enum_col = next((c for c in ("employer_category", "category", "certificate_type", "area", "status",
                                 "department_code", "apprentice_kind", "hukou") if c in df), None)
    if enum_col:
        rows = rng.choice(n, k, replace=False)
        df.loc[rows, enum_col] = _pick(rng, ["其他", "unknown", "enterprize"], k)
    date_col = next((c for c in ("issued_on", "start_date", "registered_on", "discharged_on", "valid_from",
                                 "listed_on", "paid_on", "graduated_on") if c in df), None)
    if date_col:
        rows = rng.choice(n, k, replace=False)
        df.loc[rows, date_col] = _pick(rng, ["2021-02-30", "2020-13-01", "20200101", "2019/05/06"], k)
    # compound keys whose first column is a code: copying it would make a duplicate of another row's key only
    # by chance (annual_plans: department + town + year); their duplicates are tested by hand
    key = {"class_enrollments": None, "affected_enterprises": None, "annual_plans": None}.get(name, df.columns[0])
    if key and name != "city_payouts":
        src = rng.choice(n, k, replace=False)
        dst = rng.choice(n, k, replace=False)
        df.loc[dst, key] = df.loc[src, key].to_numpy()
    return df


def _attendance_within_class(roster: pd.DataFrame, class_ids, starts, ends) -> pd.DataFrame:
    """Attended days no more than the class's calendar days, but for a few rosters that claim more (quarantined
    as attendance_exceeds_class_days). Its own random stream: the rest of the drop stays as it was."""
    rng = np.random.default_rng(len(roster) + 104729)
    index = {c: i for i, c in enumerate(class_ids)}
    known = roster["class_id"].isin(index).to_numpy()
    pos = roster["class_id"].map(index).fillna(0).astype("int64").to_numpy()
    days = ((ends - starts).astype("timedelta64[D]").astype("int64") + 1)[pos]
    att = roster["attendance_days"].astype("int64").to_numpy()
    att = np.where(known, np.minimum(att, days), att)
    over = known & (rng.random(len(roster)) < 0.005)
    att[over] = days[over] + rng.integers(1, 10, int(over.sum()))
    return roster.assign(attendance_days=att.astype(str)).reset_index(drop=True)


def _overlapping_entries(roster: pd.DataFrame, low_income: set, class_ids, starts, ends) -> pd.DataFrame:
    """A few trainees, low-income ones more often, also on the roster of another class whose dates overlap
    (资金监管: R6/R7 overlapping_attendance). Drawn from their own stream, added after every other draw, so
    the rest of the drop stays as it was."""
    rng = np.random.default_rng(len(roster) + 7919)
    index = {c: i for i, c in enumerate(class_ids)}
    share = np.where(roster["person_id"].isin(low_income), 0.15, 0.005)
    picked = roster.loc[(rng.random(len(roster)) < share) & roster["class_id"].isin(index)]
    rows = []
    for cid, person, name in zip(picked["class_id"], picked["person_id"], picked["name"], strict=True):
        i = index[cid]
        other = np.flatnonzero((starts <= ends[i]) & (starts[i] <= ends) & (np.arange(len(starts)) != i))
        if len(other):
            rows.append({"class_id": class_ids[int(rng.choice(other))], "person_id": person, "name": name,
                         "attendance_days": str(int(rng.integers(3, 20))), "passed": "false"})
    extra = pd.DataFrame(rows, columns=roster.columns)
    return extra.loc[~extra.set_index(["class_id", "person_id"]).index.isin(
        roster.set_index(["class_id", "person_id"]).index)].drop_duplicates(["class_id", "person_id"])


def generate(persons: int, seed: int, out: Path) -> DropStats:
    """Write a drop of every registry for `persons` people; same seed, same bytes."""
    if persons < 100:
        raise ValueError("--persons must be at least 100")
    rng = np.random.default_rng(seed)
    frames = _build(rng, persons)
    frames["annual_plans"] = _annual_plans(frames, np.random.default_rng([seed, 13]))  # own stream: rest unchanged
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    for name, df in frames.items():
        df = _defects(rng, name, df)
        enc, eol = ENCODING[name]
        with open(out / f"{name}.csv", "w", encoding=enc, newline="") as fh:
            df.to_csv(fh, index=False, lineterminator=eol)
        rows[name] = len(df)
    return DropStats(rows)


PLAN_YEARS = (2019, 2020, 2021)
PLAN_TOWNS = 3  # towns with a plan of their own (HRSS's, the department training most)
PLAN_FEN_PER_PERSON_TIME = 150_000  # planned funds per planned person-time: 1,500 yuan


def _annual_plans(frames: dict[str, pd.DataFrame], rng) -> pd.DataFrame:
    """年度培训计划 for every department and year of the plan and for a few towns: each the person-times its
    classes and apprenticeships give that year, scaled by 0.75-1.35, so some plans are met and some behind."""
    cls = frames["training_classes"]
    roster = frames["class_enrollments"][["class_id"]].merge(cls, on="class_id")
    ap = frames["apprenticeships"]
    got = pd.concat([pd.DataFrame({"year": roster["end_date"].str[:4], "department_code": roster["department_code"],
                                   "town_code": roster["town_code"]}),
                     pd.DataFrame({"year": ap["start_date"].str[:4], "department_code": ap["department_code"],
                                   "town_code": pd.NA})], ignore_index=True)
    got = got.loc[got["year"].isin([str(y) for y in PLAN_YEARS])]
    rows = []
    for year in PLAN_YEARS:
        mine = got.loc[got["year"] == str(year)]
        for dept in DEPARTMENTS:
            rows.append((dept, "", year, int((mine["department_code"] == dept).sum())))
        for town in TOWNS[:PLAN_TOWNS]:
            rows.append(("HRSS", town, year, int(((mine["department_code"] == "HRSS") & (mine["town_code"] == town))
                                                 .sum())))
    plans = pd.DataFrame(rows, columns=["department_code", "town_code", "year", "actual"])
    factor = rng.uniform(0.75, 1.35, len(plans))
    planned = np.maximum(1, np.round(plans["actual"].to_numpy() * factor)).astype("int64")
    funds = planned * PLAN_FEN_PER_PERSON_TIME
    return pd.DataFrame({"department_code": plans["department_code"], "town_code": plans["town_code"],
                         "year": plans["year"].astype(str), "planned_person_times": planned.astype(str),
                         "planned_funds": [f"{f // 100}.{f % 100:02d}" for f in funds]})


def _shift_dates(rng, values: pd.Series, days: int = 60) -> pd.Series:
    d = pd.to_datetime(values, format="%Y-%m-%d", errors="coerce")
    moved = d + pd.to_timedelta(rng.integers(-days, days + 1, len(d)), unit="D")
    return moved.dt.strftime("%Y-%m-%d").astype("string").where(d.notna(), values)


def change(sources: Path, out: Path, share: float, seed: int) -> dict[str, int]:
    """Write a copy of a drop in which `share` of each registry's rows changed: half edited (a date moved,
    a status or name changed), a quarter deleted, a quarter arriving late (new records). Same seed, same bytes."""
    from .contract import HASH_COL, PARSE_ERROR_COL, ROW_COL
    from .extract import read_registry

    rng = np.random.default_rng(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    changed = {}
    for name, reg in REGISTRIES.items():
        path = Path(sources) / reg.filename
        if not path.is_file():
            continue
        raw = read_registry(path, reg)
        df = raw.frame.drop(columns=[HASH_COL, PARSE_ERROR_COL, ROW_COL])
        n = len(df)
        k = int(round(n * share))
        picks = rng.permutation(n)
        edit, drop, late = picks[: k // 2], picks[k // 2: k // 2 + k // 4], picks[k // 2 + k // 4: k]
        date_cols = [c for c in reg.dates if c in df and c not in ("end_date", "valid_to", "ended_on")]
        if "status" in df:
            df.loc[df.index[edit], "status"] = np.where(df["status"].iloc[edit] == "valid", "revoked", "valid")
        elif date_cols:
            col = date_cols[0]
            df.loc[df.index[edit], col] = _shift_dates(rng, df[col].iloc[edit]).to_numpy()
        elif "name" in df:
            df.loc[df.index[edit], "name"] = df["name"].iloc[edit].fillna("") + "（更正）"
        extra = df.iloc[late].copy()
        key = reg.key[0]
        if key == "person_id" and len(reg.key) > 1 and reg.key[1] in reg.dates:
            # a person's later record (a new account): the same person from a later date, not a broken number
            extra[reg.key[1]] = _shift_dates(rng, extra[reg.key[1]], 400).to_numpy()
        else:
            extra[key] = extra[key].fillna("") + "-L" + pd.Series(range(len(extra)), index=extra.index).astype(str)
        df = pd.concat([df.drop(df.index[drop]), extra], ignore_index=True)
        encoding = {"gb18030": "gb18030", "utf-8-bom": "utf-8-sig"}.get(raw.encoding or "", "utf-8")
        with open(out / reg.filename, "w", encoding=encoding, newline="") as fh:
            df.to_csv(fh, index=False, lineterminator="\n")
        changed[name] = k
    return changed
