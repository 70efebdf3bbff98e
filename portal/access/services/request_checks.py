"""What an application still lacks before it can be submitted: a table of small rules.

Each rule looks at the application and yields ``(field, message)`` for what is missing or wrong;
``access_request_missing`` runs them all, in the order of the form, so the applicant sees every
problem at once.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

from django.core.exceptions import ValidationError
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy, pgettext

from portal.access.models import (
    AccessRequest,
    Environment,
    LegalBasis,
    Purpose,
    SecurityAnswer,
    SecurityLevel,
)
from portal.access.security_items import SECURITY_ITEMS, items_missing_for_level
from portal.access.services.request_common import (
    EXPECTED_OUTPUTS,
    JOINT_RESEARCH_BASES,
    MAX_PERIOD_DAYS,
    _user_is_member,
    clean_researcher_number,
)
from portal.datasets.models import DatasetRelease, DatasetStatus
from portal.ethics.selectors import protocol_data_flow

Problem = tuple[str, str]
Rule = Callable[[AccessRequest], Iterator[Problem]]


def _check(name: str, ok: Callable[[AccessRequest], Any], message: Any) -> Rule:
    """A rule of one field: ``message`` unless ``ok(application)``."""

    def rule(r: AccessRequest) -> Iterator[Problem]:
        if not ok(r):
            yield name, str(message)

    return rule


def _unset(pairs: Iterable[tuple[Any, Any]]) -> str:
    """The labels of the values not given, joined for a message."""
    return ", ".join(str(label) for value, label in pairs if not value)


# --- applicant and team ---


def _signatory(r: AccessRequest) -> Iterator[Problem]:
    if not r.signatory_id:
        yield "signatory", _("Name the authorised signatory of the organisation.")
    elif not _user_is_member(r.signatory, r.organization_id):
        yield "signatory", _("The authorised signatory must belong to the applicant organisation.")


def _researcher_number(r: AccessRequest) -> Iterator[Problem]:
    if not r.pi_researcher_number:
        yield "pi_researcher_number", _(
            "Give the principal investigator's e-Rad researcher number or researchmap ID.")
        return
    try:
        clean_researcher_number(r.pi_researcher_number_kind, r.pi_researcher_number)
    except ValidationError as error:
        for name, messages in error.message_dict.items():
            for message in messages:
                yield name, message


def _head(r: AccessRequest) -> Iterator[Problem]:
    missing = _unset((value.strip(), label) for value, label in (
        (r.head_name, pgettext("head of institution", "name")),
        (r.head_title, pgettext("head of institution", "title")),
        (r.head_email, pgettext("head of institution", "e-mail")),
    ))
    if missing:
        yield "head", _("Give the head of the applicant's institution: %(missing)s.") % {"missing": missing}


def _named_users(r: AccessRequest) -> Iterator[Problem]:
    named = list(r.named_users.select_related("user"))
    if not named:
        yield "named_users", _("Name at least one user of the data.")
    for row in named:
        if row.ethics_training and not row.ethics_training_date:
            yield "named_users", _("Give the date of the research-ethics training of %(user)s.") % {"user": row.user}


# --- purpose and legal basis ---


def _joint_research_needed(r: AccessRequest) -> bool:
    return r.legal_basis in JOINT_RESEARCH_BASES or (
        r.legal_basis == LegalBasis.ACADEMIC_EXEMPTION
        and (r.purpose == Purpose.PRODUCT_DEVELOPMENT or r.organization.kind == "company")
    )


def _joint_research(r: AccessRequest) -> Iterator[Problem]:
    if not _joint_research_needed(r):
        return
    missing = _unset((
        (r.joint_research_number, _("number")), (r.joint_research_parties, _("parties")),
        (r.joint_research_date, _("date")),
    ))
    if not missing:
        return
    if r.legal_basis == LegalBasis.ACADEMIC_EXEMPTION and r.purpose == Purpose.PRODUCT_DEVELOPMENT:
        yield "legal_basis", _("Product development cannot rest on the academic-research exemption alone: "
                               "give the joint-research agreement (%(missing)s).") % {"missing": missing}
    else:
        yield "joint_research", _("Give the joint-research agreement's %(missing)s for this legal basis.") % {
            "missing": missing}


def _not_outsourced_product(r: AccessRequest) -> bool:
    return not (r.legal_basis == LegalBasis.OUTSOURCING and r.purpose == Purpose.PRODUCT_DEVELOPMENT)


# --- ethics approval ---


def _ethics(r: AccessRequest) -> Iterator[Problem]:
    if r.ethics_protocol_id:
        flow = protocol_data_flow(r.ethics_protocol)
        if not flow.allowed:
            yield "ethics_protocol", _("The ethics approval in the portal does not allow use now: %(reason)s") % {
                "reason": flow.reason}
        return
    missing = _unset((
        (r.ethics_approval_file, _("the approval notice (PDF)")),
        (r.ethics_committee_name, _("the committee's name")),
        (r.ethics_approval_number, _("the approval number")),
        (r.ethics_approval_date, _("the approval date")),
    ))
    if missing:
        yield "ethics_approval", _("Choose an ethics approval in the portal or give %(missing)s.") % {
            "missing": missing}


# --- data requested ---


def _releases(r: AccessRequest) -> Iterator[Problem]:
    releases = list(r.releases.select_related("dataset"))
    if not releases:
        yield "releases", _("Choose at least one release of a dataset.")
    for release in releases:
        if release.status != DatasetRelease.Status.AVAILABLE or release.dataset.status != DatasetStatus.PUBLISHED:
            yield "releases", _("%(release)s cannot be requested: it is not available in the catalogue.") % {
                "release": release}


# --- environment and security ---


def _security(r: AccessRequest) -> Iterator[Problem]:
    """The level claimed and every self-assessment item (one query for the answers)."""
    answers = {a.item: a for a in r.security_answers.all()}
    if not r.security_level:
        yield "security_level", _("Choose the security level you claim (Type I or Type II).")
    else:
        short = items_missing_for_level(r.security_level, {key: a.status for key, a in answers.items()},
                                        external_server=r.environment == Environment.EXTERNAL_SERVER)
        if short:
            yield "security_level", _("%(level)s needs these self-assessment items in place: %(items)s.") % {
                "level": SecurityLevel(r.security_level).label, "items": "、".join(i.label_ja for i in short)}
    for item in SECURITY_ITEMS:
        answer = answers.get(item.key)
        if answer is None:
            yield "security_answers", _("Answer the self-assessment item “%(item)s”.") % {"item": item.label_ja}
        elif answer.status != SecurityAnswer.Status.NOT_APPLICABLE and not answer.evidence.strip():
            yield "security_answers", _("Give the evidence for the self-assessment item “%(item)s”.") % {
                "item": item.label_ja}


# --- period ---


def _period(r: AccessRequest) -> Iterator[Problem]:
    if not r.period_start or not r.period_end:
        yield "period", _("Give the period of use (from and to).")
    elif r.period_end <= r.period_start:
        yield "period", _("The period must end after it starts.")
    elif (r.period_end - r.period_start).days > MAX_PERIOD_DAYS:
        yield "period", _("The period of use may last at most three years.")


MISSING_RULES: tuple[Rule, ...] = (
    # applicant and team
    _check("organization", lambda r: r.organization_id, gettext_lazy("Name the applicant organisation.")),
    _check("principal_investigator", lambda r: r.principal_investigator_id,
           gettext_lazy("Name the principal investigator.")),
    _signatory,
    _check("pi_title", lambda r: r.pi_title.strip(), gettext_lazy("Give the principal investigator's title.")),
    _researcher_number,
    _check("pi_research_record", lambda r: r.pi_research_record.strip(),
           gettext_lazy("Give the principal investigator's research record (related papers).")),
    _head,
    _named_users,
    # purpose and legal basis
    _check("title", lambda r: r.title.strip(), gettext_lazy("Give the research title.")),
    _check("purpose", lambda r: r.purpose, gettext_lazy("Choose the purpose of use.")),
    _check("expected_outputs", lambda r: any(o in EXPECTED_OUTPUTS for o in r.expected_outputs or []),
           gettext_lazy("Choose at least one expected output.")),
    _check("legal_basis", lambda r: r.legal_basis, gettext_lazy("Choose the legal basis for the provision.")),
    _joint_research,
    _check("legal_basis", _not_outsourced_product,
           gettext_lazy("Outsourcing cannot carry product development for the company's own purposes; "
                        "choose another legal basis.")),
    # ethics approval and data requested
    _ethics,
    _releases,
    _check("processing_level", lambda r: r.processing_level, gettext_lazy("Choose the required processing level.")),
    # environment and security
    _check("environment", lambda r: r.environment,
           gettext_lazy("Choose the environment in which the data will be used.")),
    _check("foreign_country", lambda r: not r.foreign_access or r.foreign_country.strip(),
           gettext_lazy("Name the country from which the data will be accessed.")),
    _security,
    _period,
)


def access_request_missing(access_request: AccessRequest, *, today=None) -> dict[str, list[str]]:  # type: ignore[no-untyped-def]
    """Every required answer still missing, by field; empty when the application can be submitted."""
    problems: dict[str, list[str]] = {}
    for rule in MISSING_RULES:
        for name, message in rule(access_request):
            problems.setdefault(name, []).append(message)
    return problems
