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

ITEMS_BY_KEY = {item.key: item for item in PROTOCOL_ITEMS}
