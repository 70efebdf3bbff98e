"""Terms of several societies side by side, and the conflicts named between them (no database)."""

from __future__ import annotations

from django.template.loader import render_to_string

from portal.agreements.models import AgreementTemplate, AgreementTemplateVersion
from portal.agreements.selectors import terms_conflicts, terms_side_by_side
from portal.societies.models import Society


def _version(slug: str, name: str, **terms: object) -> AgreementTemplateVersion:
    society = Society(slug=slug, name_ja=name)
    template = AgreementTemplate(society=society, name_ja=f"{name} データ利用契約", name_en="Data-use agreement")
    return AgreementTemplateVersion(template=template, number=1, status="published", body_ja="本文", **terms)


def _pair() -> list[AgreementTemplateVersion]:
    jsp = _version("jsp", "日本病理学会", commercial_use_allowed=False, patent_licence_back=True,
                   model_owner="joint", annotated_data_owner="society", term_months=12,
                   deletion_certificate_required=True, fee_jpy=0)
    jges = _version("jges", "日本消化器内視鏡学会", commercial_use_allowed=True, patent_licence_back=False,
                    model_owner="user", annotated_data_owner="society", term_months=36,
                    deletion_certificate_required=False, fee_jpy=300000)
    return [jsp, jges]


def test_conflicts_of_a_two_society_pair_for_product_development():
    conflicts = terms_conflicts(_pair(), purpose="product_development")

    assert [(c.code, c.societies) for c in conflicts] == [
        ("commercial_use_forbidden", ("jsp",)),
        ("licence_back", ("jsp",)),
        ("model_owner", ("jsp", "jges")),
        ("term_months", ("jsp", "jges")),
        ("deletion_certificate", ("jsp",)),
    ]
    assert conflicts[0].message == (
        "日本病理学会 forbid commercial use, but the purpose of the application is product development.")
    assert conflicts[2].message == (
        "The societies name different owners of models and algorithms derived from the data: "
        "日本病理学会: Jointly owned、日本消化器内視鏡学会: The data user.")
    assert conflicts[3].message.endswith("for at most 12 months.")


def test_commercial_use_differs_when_the_purpose_is_academic():
    codes = [c.code for c in terms_conflicts(_pair(), purpose="academic")]
    assert codes[0] == "commercial_use_differs"
    assert "commercial_use_forbidden" not in codes


def test_single_society_forbidding_commercial_use_conflicts_only_with_product_development():
    jsp = _pair()[0]
    assert [c.code for c in terms_conflicts([jsp], purpose="product_development")] == ["commercial_use_forbidden"]
    assert terms_conflicts([jsp], purpose="academic") == []


def test_identical_terms_have_no_conflicts():
    same = [_version("a", "学会A"), _version("b", "学会B")]
    assert terms_conflicts(same, purpose="academic") == []


def test_side_by_side_rows_hold_each_societys_value_as_text():
    table = terms_side_by_side(_pair())

    assert [column.society.slug for column in table.columns] == ["jsp", "jges"]
    rows = {row.name: row for row in table}
    assert len(table) == len(AgreementTemplateVersion.TERM_FIELDS)
    assert rows["commercial_use_allowed"].label == "commercial use allowed"
    assert rows["commercial_use_allowed"].values == ["No", "Yes"]
    assert rows["fee_jpy"].values == ["Free of charge", "300,000 yen"]
    assert rows["term_months"].values == ["12 months", "36 months"]
    assert rows["model_owner"].values == ["Jointly owned", "The data user"]
    assert rows["annotated_data_owner"].differs is False
    assert rows["fee_jpy"].differs is True


def test_partial_renders_table_and_conflicts():
    versions = _pair()
    html = render_to_string("agreements/_terms_side_by_side.html", {
        "table": terms_side_by_side(versions), "conflicts": terms_conflicts(versions, purpose="product_development"),
    })
    assert 'data-conflict="commercial_use_forbidden"' in html
    assert 'data-term="patent_licence_back" class="agreement-compare__differs"' in html
    assert "日本消化器内視鏡学会" in html
    assert "300,000 yen" in html
