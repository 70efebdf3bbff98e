"""The 25 items a research protocol must state (生命・医学系指針 第7(1)), as data.

Each item is stored as its own ``ProtocolItem`` row. Items 1-15 are always required; items 16-25
apply only when relevant, so they may instead carry a reason for omission (記載省略の理由), which
the committee judges. Labels live here, in one place, so that the wording can follow the official
text when it changes (REGULATION.md marks some as "verify").
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class ProtocolItemSpec:
    number: int
    key: str
    label: str | Promise
    always_required: bool

    @property
    def marker(self) -> str:
        """The circled number used in the guideline: ① .. ⑳, then ㉑ .. ㉕."""
        return chr(0x2460 + self.number - 1) if self.number <= 20 else chr(0x3251 + self.number - 21)

    @property
    def is_organization(self) -> bool:
        """Item ②, stated as rows of ``OrganizationEntry`` (institution × person × role)."""
        return self.key in ORGANIZATION_ITEM_KEYS


PROTOCOL_ITEMS: tuple[ProtocolItemSpec, ...] = (
    ProtocolItemSpec(1, "title", _("Title of the research"), True),
    ProtocolItemSpec(2, "organization", _("Research organisation (institutions, researchers and providers of existing data)"), True),
    ProtocolItemSpec(3, "purpose_significance", _("Purpose and significance"), True),
    ProtocolItemSpec(4, "methods_period", _("Methods and period"), True),
    ProtocolItemSpec(5, "subject_selection", _("Policy for selecting research subjects"), True),
    ProtocolItemSpec(6, "scientific_rationale", _("Scientific rationale"), True),
    ProtocolItemSpec(7, "consent_procedure", _("Informed consent procedure"), True),
    ProtocolItemSpec(8, "personal_info_handling", _("Handling of personal information"), True),
    ProtocolItemSpec(9, "burden_risk_benefit", _("Burden, expected risks and benefits, overall assessment and measures to minimise them"), True),
    ProtocolItemSpec(10, "storage_disposal", _("Storage and disposal of specimens and information"), True),
    ProtocolItemSpec(11, "reporting_to_head", _("Reports to the head of the institution"), True),
    ProtocolItemSpec(12, "funding_coi", _("Funding and conflicts of interest"), True),
    ProtocolItemSpec(13, "disclosure_method", _("How information about the research is disclosed"), True),
    ProtocolItemSpec(14, "results_handling", _("Handling of results, including incidental findings"), True),
    ProtocolItemSpec(15, "consultation_desk", _("Consultation desk for subjects and their families"), True),
    ProtocolItemSpec(16, "proxy_consent", _("Procedure for consent from a proxy"), False),
    ProtocolItemSpec(17, "informed_assent", _("Procedure for informed assent"), False),
    ProtocolItemSpec(18, "simplification_judgement", _("How the requirements for simplifying consent are judged to be met"), False),
    ProtocolItemSpec(19, "subject_cost_reward", _("Costs to subjects or rewards"), False),
    ProtocolItemSpec(20, "sae_response", _("Response to serious adverse events"), False),
    ProtocolItemSpec(21, "compensation", _("Compensation for health damage"), False),
    ProtocolItemSpec(22, "post_trial_care", _("Medical care after the research"), False),
    ProtocolItemSpec(23, "outsourcing", _("Outsourced work and supervision of contractors"), False),
    ProtocolItemSpec(24, "future_use_and_provision", _("Possible future use and provision to other institutions, and how subjects can check them"), False),
    ProtocolItemSpec(25, "monitoring_audit", _("Monitoring and audit"), False),
)

# 試料・情報の収集・提供を行う機関の研究計画書 (the "bank" protocol of the society database;
# REGULATION.md a1). Its keys carry a ``cp_`` prefix so that one key names one item whatever the
# kind. Costs or rewards and important findings may not arise in a database, so they may be
# omitted with a reason; the rest are always required.
COLLECTION_PROVISION_ITEMS: tuple[ProtocolItemSpec, ...] = (
    ProtocolItemSpec(1, "title", _("Title of the research"), True),
    ProtocolItemSpec(2, "cp_organization", _("Organisation of the collection and provision"), True),
    ProtocolItemSpec(3, "cp_purpose", _("Purpose and significance"), True),
    ProtocolItemSpec(4, "cp_method_period", _("Methods and period of the collection and provision"), True),
    ProtocolItemSpec(5, "cp_data_types", _("Kinds of specimens and information collected and provided"), True),
    ProtocolItemSpec(6, "cp_consent_procedure", _("Informed consent procedure"), True),
    ProtocolItemSpec(7, "cp_personal_info", _("Handling of personal information"), True),
    ProtocolItemSpec(8, "cp_risk_benefit", _("Burden, risks and benefits"), True),
    ProtocolItemSpec(9, "cp_storage_quality", _("Storage and quality control"), True),
    ProtocolItemSpec(10, "cp_after_end", _("Handling after the collection and provision end"), True),
    ProtocolItemSpec(11, "cp_funding_coi", _("Funding and conflicts of interest"), True),
    ProtocolItemSpec(12, "cp_consultation", _("Responding to consultations"), True),
    ProtocolItemSpec(13, "cp_cost_reward", _("Costs to subjects or rewards"), False),
    ProtocolItemSpec(14, "cp_important_findings", _("Handling of important findings"), False),
    ProtocolItemSpec(15, "cp_future_provision", _("Possible future provision to other institutions, what is expected, and how subjects can check it"), True),
)

# The item that the structured rows of ``OrganizationEntry`` state, for each kind.
ORGANIZATION_ITEM_KEYS = frozenset({"organization", "cp_organization"})

ITEMS_BY_KEY = {item.key: item for item in (*PROTOCOL_ITEMS, *COLLECTION_PROVISION_ITEMS)}


def items_for(kind: str) -> tuple[ProtocolItemSpec, ...]:
    """The items a protocol of ``kind`` (``Protocol.Kind``) must state, in order."""
    return COLLECTION_PROVISION_ITEMS if kind == "collection_provision" else PROTOCOL_ITEMS


def item_heading(key: str) -> str:
    """How the committee names an item: its circled number and label ("⑤ 研究対象者の選定方針").

    Comments and API answers store the item's key; people are shown this instead. A key no table
    knows (an item since removed) is shown as it is rather than hidden.
    """
    spec = ITEMS_BY_KEY.get(key)
    return f"{spec.marker} {spec.label}" if spec else key
