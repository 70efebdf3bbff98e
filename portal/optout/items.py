"""The items an opt-out notice tells the public (guideline 第8の6, REGULATION.md a3), with their labels.

One place for the labels, so the official Japanese wording can be corrected without touching the
pages: the msgids are English, the Japanese catalogue holds the guideline's wording.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from portal.ethics.fields import with_titles
from portal.ethics.models import Protocol
from portal.optout.models import OptOutNoticeVersion


@dataclass(frozen=True)
class NoticeItem:
    key: str
    label: Promise
    required: bool


_LABELS = {
    "title": _("Title of the research"),
    "purpose_and_method": _(
        "Purpose and method of use of the data (including how they are provided to other institutions)"
    ),
    "data_items": _("Items of data used or provided"),
    "providing_org_and_head": _("Names of the institutions providing the data and of their heads"),
    "acquisition_method": _("How the data provided were obtained"),
    "pi_and_org": _(
        "Principal investigator (lead investigator for multi-site research) and their research institution"
    ),
    "user_scope": _("Scope of those who use the data"),
    "data_controller": _("Name of the person or body responsible for managing the data"),
    "stop_on_request": _(
        "That use, or provision to other institutions, of data identifying the subject stops at the "
        "request of the subject or their representative"
    ),
    "how_to_request": _("How such requests are received"),
    "foreign_provision_info": _(
        "Provision to a third party abroad: the country, its system for protecting personal "
        "information, and the measures the recipient takes"
    ),
    "contact": _("Contact for enquiries"),
}

NOTICE_ITEMS: tuple[NoticeItem, ...] = tuple(
    NoticeItem(key, _LABELS[key], required) for key, required in OptOutNoticeVersion.ITEMS
)
REQUIRED_KEYS = tuple(item.key for item in NOTICE_ITEMS if item.required)

# The fields of a version that the society admin writes (both languages of every item, and dates).
VERSION_FIELDS: tuple[str, ...] = (
    *(f"{item.key}_{lang}" for item in NOTICE_ITEMS for lang in ("ja", "en")),
    "start_date",
    "end_date",
    "change_summary",
)

# The standard lead paragraph patients expect (REGULATION.md a3, audience wording).
LEAD_PARAGRAPH = _(
    "If you do not wish your information to be used for this research, please tell us. You can "
    "ask at any time, and you will suffer no disadvantage from asking."
)


def research_title(protocol_id: int | None) -> str:
    """The research title (研究の名称, item ①) as the protocol gives it: the newest submitted version's."""
    if protocol_id is None:
        return ""
    return with_titles(Protocol.objects.filter(pk=protocol_id)).values_list("title", flat=True).first() or ""


def items_as_read(version: OptOutNoticeVersion, *, title: str) -> list[tuple[NoticeItem, str]]:
    """Every item with its text; ① 研究の名称 is the research's title, not the notice's heading
    (which is ``version.title``); the notice's heading stands in only when the protocol has none."""
    return [(item, (title or version.title) if item.key == "title" else version.text(item.key)) for item in NOTICE_ITEMS]
