"""The registry files of a drop, as CONTRACT.md lists them: columns, keys and which are required."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Registry:
    """One registry of the contract: its file name, key and typed columns."""

    name: str
    title_zh: str
    key: tuple[str, ...]
    columns: tuple[str, ...]
    required: bool
    dates: tuple[str, ...] = ()
    integers: tuple[str, ...] = ()
    money: tuple[str, ...] = ()

    @property
    def filename(self) -> str:
        """File name of this registry inside a drop."""
        return f"{self.name}.csv"

    @property
    def table(self) -> str:
        """Warehouse staging table holding this registry's accepted rows."""
        return f"stg_{self.name}"


REGISTRIES: dict[str, Registry] = {
    r.name: r
    for r in (
        Registry(
            "social_insurance", "失业保险参保记录", ("record_id",),
            ("record_id", "person_id", "name", "employer_credit_code", "employer_name",
             "employer_category", "start_date", "end_date", "town_code"),
            required=True, dates=("start_date", "end_date"),
        ),
        Registry(
            "unemployment_registrations", "城乡失业登记", ("record_id",),
            ("record_id", "person_id", "name", "registered_on", "ended_on", "area", "town_code"),
            required=True, dates=("registered_on", "ended_on"),
        ),
        Registry(
            "certificates", "证书核发", ("certificate_no",),
            ("certificate_no", "person_id", "name", "certificate_type", "occupation_code",
             "occupation_name", "level", "issued_on", "issuer", "training_class_id", "status"),
            required=True, dates=("issued_on",), integers=("level",),
        ),
        Registry(
            "veterans", "退役军人", ("record_id",),
            ("record_id", "person_id", "name", "discharged_on", "town_code"),
            required=True, dates=("discharged_on",),
        ),
        Registry(
            "low_income", "低收入及困难群体", ("record_id",),
            ("record_id", "person_id", "name", "household_id", "category", "valid_from", "valid_to"),
            required=True, dates=("valid_from", "valid_to"),
        ),
        Registry(
            "training_classes", "培训开班备案", ("class_id",),
            ("class_id", "department_code", "project_id", "institution_name", "institution_credit_code",
             "occupation_code", "level", "training_kind", "filed_on", "start_date", "end_date", "town_code"),
            required=False, dates=("filed_on", "start_date", "end_date"), integers=("level",),
        ),
        Registry(
            "class_enrollments", "实名制学员名册", ("class_id", "person_id"),
            ("class_id", "person_id", "name", "attendance_days", "passed"),
            required=False, integers=("attendance_days",),
        ),
        Registry(
            "apprenticeships", "学徒培养协议", ("agreement_id",),
            ("agreement_id", "person_id", "name", "employer_credit_code", "school_name",
             "apprentice_kind", "start_date", "end_date", "monthly_allowance", "department_code"),
            required=False, dates=("start_date", "end_date"), money=("monthly_allowance",),
        ),
        Registry(
            "affected_enterprises", "经贸摩擦受影响企业目录", ("employer_credit_code",),
            ("employer_credit_code", "employer_name", "listed_on", "uplift_rate"),
            required=False, dates=("listed_on",),
        ),
        Registry(
            "city_payouts", "市级已发放补贴", ("certificate_no",),
            ("person_id", "occupation_code", "level", "certificate_no", "paid_on", "amount"),
            required=False, dates=("paid_on",), integers=("level",), money=("amount",),
        ),
        Registry(
            "subsidy_catalog", "补贴目录清单",
            ("occupation_code", "certificate_type", "level", "effective_from"),
            ("occupation_code", "certificate_type", "level", "amount", "effective_from", "effective_to"),
            required=False, dates=("effective_from", "effective_to"), integers=("level",),
            money=("amount",),
        ),
        Registry(
            "training_projects", "行业部门培训项目备案", ("project_id",),
            ("project_id", "department_code", "title", "occupation_code", "level", "standard_per_trainee",
             "planned_trainees", "budget", "filed_on"),
            required=False, dates=("filed_on",), integers=("level", "planned_trainees"),
            money=("standard_per_trainee", "budget"),
        ),
        Registry(
            "training_institutions", "培训机构资质", ("institution_credit_code", "qualified_from"),
            ("institution_credit_code", "institution_name", "qualified_from", "qualified_to", "bank_name",
             "account_no"),
            required=False, dates=("qualified_from", "qualified_to"),
        ),
        Registry(
            "school_leavers", "“两后生”名单", ("record_id",),
            ("record_id", "person_id", "name", "school_name", "education_level", "graduated_on", "hukou"),
            required=False, dates=("graduated_on",),
        ),
        Registry(
            "objections", "公示异议", ("objection_id",),
            ("objection_id", "subsidy_type", "reference", "person_id", "lodged_on", "resolved_on", "outcome"),
            required=False, dates=("lodged_on", "resolved_on"),
        ),
        Registry(
            "payee_accounts", "社保卡金融账户", ("person_id", "valid_from"),
            ("person_id", "name", "bank_name", "account_no", "valid_from", "valid_to"),
            required=False, dates=("valid_from", "valid_to"),
        ),
        Registry(
            "payment_results", "银行代发回盘", ("instruction_id",),
            ("instruction_id", "payout_id", "result", "result_date", "failure_reason"),
            required=False, dates=("result_date",),
        ),
        Registry(
            "annual_plans", "年度培训计划", ("department_code", "town_code", "year"),
            ("department_code", "town_code", "year", "planned_person_times", "planned_funds"),
            required=False, integers=("year", "planned_person_times"), money=("planned_funds",),
        ),
    )
}
