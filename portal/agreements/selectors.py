"""Reads of agreements: the version a society signs now, terms side by side and their conflicts,
who may see what.

``terms_side_by_side`` and ``terms_conflicts`` take published versions (or signed agreements, whose
stored snapshot of the terms is what counts) of several societies: an application that spans them
shows each society's terms in one table and names where they pull apart.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Count, Q, QuerySet
from django.utils.formats import number_format
from django.utils.translation import gettext as _

from portal.accounts.models import OrganizationMembership
from portal.agreements.models import (
    AgreementTemplate,
    AgreementTemplateVersion,
    Owner,
    SignedAgreement,
)
from portal.datasets.selectors import is_operator, managed_society_ids
from portal.societies.models import Society, SocietyMembership

Version = AgreementTemplateVersion
PUBLISHED_STATES = (Version.Status.PUBLISHED, Version.Status.SUPERSEDED)


# --- The version in force -----------------------------------------------------------------------


def current_version_for(society: Society, kind: str = AgreementTemplate.Kind.DATA_USE) -> Version | None:
    """The published version of ``society``'s template of ``kind`` (None until one is published)."""
    return (
        Version.objects.filter(template__society=society, template__kind=kind, status=Version.Status.PUBLISHED)
        .select_related("template__society")
        .order_by("template_id")
        .first()
    )


def agreement_needs_resign(agreement: SignedAgreement) -> bool:
    """A newer version of the signed template was published and asks holders to sign it again."""
    signed = agreement.template_version
    return Version.objects.filter(
        template_id=signed.template_id, number__gt=signed.number, status__in=PUBLISHED_STATES,
        resign_on_new_version=True,
    ).exists()


# --- Who may see what ---------------------------------------------------------------------------


def may_manage_agreements(user: Any, society: Society) -> bool:
    """Society admins of ``society`` and the platform operator keep its agreement templates."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return is_operator(user) or society.pk in managed_society_ids(user)


def may_countersign(user: Any, society: Society) -> bool:
    """Only an admin of the society signs for it (the platform operator does not)."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    return society.pk in managed_society_ids(user)


def templates_managed_by(user: Any) -> QuerySet[AgreementTemplate]:
    """The templates ``user`` keeps, with what the list shows, in two queries whatever their number."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return AgreementTemplate.objects.none()
    templates = AgreementTemplate.objects.all()
    if not is_operator(user):
        templates = templates.filter(society_id__in=managed_society_ids(user))
    return (
        templates.select_related("society", "current_version")
        .annotate(
            version_count=Count("versions", distinct=True),
            draft_count=Count("versions", filter=Q(versions__status=Version.Status.DRAFT), distinct=True),
            signature_count=Count("versions__signatures", distinct=True),
        )
        .order_by("society__slug", "kind", "id")
    )


def may_see_agreement_pages(user: Any) -> bool:
    return is_operator(user) or bool(managed_society_ids(user))


def may_read_signed_agreement(user: Any, agreement: SignedAgreement) -> bool:
    """The signatory, members of the applicant's organisation, the society's admins and stewards."""
    if not getattr(user, "is_authenticated", False) or not getattr(user, "is_active", False):
        return False
    if user.pk == agreement.signatory_id:
        return True
    request = agreement.access_request
    if OrganizationMembership.objects.filter(user=user, organization_id=request.organization_id).exists():
        return True
    return SocietyMembership.objects.filter(
        user=user, society_id=agreement.society_id, role__in=["admin", "steward"]
    ).exists()


# --- Terms as text ------------------------------------------------------------------------------


def term_label(name: str) -> str:
    return str(Version._meta.get_field(name).verbose_name)


def term_display(name: str, value: Any) -> str:
    """A term's value as the pages show it, in the reader's language."""
    if name in {"images_owner", "annotated_data_owner", "model_owner"}:
        return str(Owner(value).label) if value in Owner.values else str(value)
    if isinstance(value, bool):
        return _("Yes") if value else _("No")
    if name == "fee_jpy":
        return _("Free of charge") if not value else _("%(amount)s yen") % {"amount": number_format(value, force_grouping=True)}
    if name == "term_months":
        return _("%(months)s months") % {"months": value}
    return str(value or "").strip() or "—"


def _terms_of(item: Version | SignedAgreement | dict[str, Any]) -> dict[str, Any]:
    if isinstance(item, SignedAgreement):
        return dict(item.terms)
    if isinstance(item, Version):
        return item.terms()
    return dict(item)


def _society_of(item: Version | SignedAgreement) -> Society:
    if isinstance(item, SignedAgreement):
        return item.society
    return item.template.society


@dataclass(frozen=True)
class TermRow:
    name: str
    label: str
    values: list[str]
    differs: bool


@dataclass(frozen=True)
class TermsColumn:
    society: Society
    version_number: int
    template_name: str


@dataclass
class TermsTable:
    """Columns (one per society) and rows (one per term); iterating yields the rows."""

    columns: list[TermsColumn]
    rows: list[TermRow] = field(default_factory=list)

    def __iter__(self) -> Iterator[TermRow]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)


def terms_side_by_side(versions: Iterable[Version | SignedAgreement]) -> TermsTable:
    """Every structured term with each society's value as display text, in the order of ``versions``."""
    items = list(versions)
    columns = []
    for item in items:
        version = item.template_version if isinstance(item, SignedAgreement) else item
        columns.append(TermsColumn(society=_society_of(item), version_number=version.number,
                                   template_name=version.template.name))
    terms = [_terms_of(item) for item in items]
    rows = []
    for name in Version.TERM_FIELDS:
        raw = [entry.get(name) for entry in terms]
        rows.append(TermRow(
            name=name, label=term_label(name), values=[term_display(name, value) for value in raw],
            differs=len({repr(value) for value in raw}) > 1,
        ))
    return TermsTable(columns=columns, rows=rows)


# --- Conflicts ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class TermConflict:
    """Where the terms of several societies pull apart; ``code`` is stable, ``message`` is for people."""

    code: str
    term: str
    message: str
    societies: tuple[str, ...]


def _names(societies: Sequence[Society]) -> str:
    return "、".join(society.name_ja for society in societies)


def terms_conflicts(versions: Iterable[Version | SignedAgreement], *, purpose: str | None = None) -> list[TermConflict]:
    """The conflicts between the societies' terms, for an application with ``purpose``.

    Commercial use forbidden while the purpose is product development (or while another society
    allows it); a licence back required by some; different owners of derived models or annotated
    data; different terms; a deletion certificate required by some.
    """
    items = list(versions)
    pairs = [(_society_of(item), _terms_of(item)) for item in items]
    conflicts: list[TermConflict] = []

    def split(name: str) -> tuple[list[Society], list[Society]]:
        yes = [society for society, terms in pairs if terms.get(name)]
        no = [society for society, terms in pairs if not terms.get(name)]
        return yes, no

    def slugs(societies: Sequence[Society]) -> tuple[str, ...]:
        return tuple(society.slug for society in societies)

    allow, forbid = split("commercial_use_allowed")
    if forbid and purpose == "product_development":
        conflicts.append(TermConflict(
            code="commercial_use_forbidden", term="commercial_use_allowed", societies=slugs(forbid),
            message=_("%(societies)s forbid commercial use, but the purpose of the application is product "
                      "development.") % {"societies": _names(forbid)},
        ))
    elif forbid and allow:
        conflicts.append(TermConflict(
            code="commercial_use_differs", term="commercial_use_allowed", societies=slugs(forbid),
            message=_("%(forbid)s forbid commercial use while %(allow)s allow it; the results may only be used "
                      "as the strictest terms allow.") % {"forbid": _names(forbid), "allow": _names(allow)},
        ))
    if len(pairs) > 1:
        required, not_required = split("patent_licence_back")
        if required and not_required:
            conflicts.append(TermConflict(
                code="licence_back", term="patent_licence_back", societies=slugs(required),
                message=_("%(societies)s require a licence back of patents, and the others do not.")
                % {"societies": _names(required)},
            ))
        for name, code, text in (
            ("model_owner", "model_owner",
             _("The societies name different owners of models and algorithms derived from the data: %(owners)s.")),
            ("annotated_data_owner", "annotated_data_owner",
             _("The societies name different owners of the annotated training data: %(owners)s.")),
        ):
            owners = {terms.get(name) for _society, terms in pairs}
            if len(owners) > 1:
                described = "、".join(
                    f"{society.name_ja}: {term_display(name, terms.get(name))}" for society, terms in pairs
                )
                conflicts.append(TermConflict(code=code, term=name, societies=slugs([s for s, _t in pairs]),
                                              message=text % {"owners": described}))
        months = {terms.get("term_months") for _society, terms in pairs}
        if len(months) > 1:
            shortest = min(int(value or 0) for value in months)
            conflicts.append(TermConflict(
                code="term_months", term="term_months", societies=slugs([s for s, _t in pairs]),
                message=_("The societies allow different terms of use; the data of all of them can be used "
                          "together for at most %(months)s months.") % {"months": shortest},
            ))
        required, not_required = split("deletion_certificate_required")
        if required and not_required:
            conflicts.append(TermConflict(
                code="deletion_certificate", term="deletion_certificate_required", societies=slugs(required),
                message=_("%(societies)s require a deletion certificate at the end of use.")
                % {"societies": _names(required)},
            ))
    return conflicts
