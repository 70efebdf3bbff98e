"""The linkage index, linkage approvals and the governed matching queries.

* ``linkage_index_release`` rebuilds a dataset's ``LinkageRecord`` rows from its newest available
  release; the datasets services call it inside the transaction that builds or withdraws a release.
  ``linkage_forget_subject`` removes an opted-out subject at once.
* ``linkage_approval_grant`` / ``linkage_approval_revoke``: the platform operator (staff with a
  second factor) decides who may link records of which societies, until when, and for what.
* ``linkage_query`` / ``linkage_export``: every matching query goes through here. It runs only under
  an active approval covering every chosen society, and it is audited (societies, dates, tolerance
  and the number of rows; never a pseudonym), refusals included.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.accounts.roles import Role, has_mfa, has_role
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease, ReleaseFile
from portal.linkage.models import LinkageApproval, LinkageRecord
from portal.linkage.selectors import (
    DEFAULT_PAGE_SIZE,
    Match,
    MatchPage,
    linkage_match,
    linkage_match_all,
)
from portal.notifications.services import notification_send
from portal.optout import selectors as optout_selectors
from portal.societies.models import Society

INDEX_BATCH_SIZE = 5000
# Matches per page on the page and the API.
PAGE_SIZE = DEFAULT_PAGE_SIZE


class LinkageNotApproved(PermissionDenied):
    """The user holds no active linkage approval covering every chosen society."""


# --- The index ------------------------------------------------------------------------------------


def _excluded_pseudonyms(dataset: Any) -> set[str]:
    return set(optout_selectors.excluded_pseudonyms(dataset=dataset))


def linkage_index_release(*, release: Any) -> int:
    """Rebuild the index rows of ``release``'s dataset from the dataset's newest available release.

    Call it inside the transaction that builds or withdraws a release. Files without a study date
    and annotation files are not indexed, nor are subjects who opted out of this dataset. Returns
    the number of rows written.
    """
    dataset = release.dataset
    with transaction.atomic():
        LinkageRecord.objects.filter(dataset=dataset).delete()
        newest = (
            DatasetRelease.objects.filter(dataset=dataset, status=DatasetRelease.Status.AVAILABLE)
            .order_by("-version")
            .first()
        )
        if newest is None:
            return 0
        excluded = _excluded_pseudonyms(dataset)
        groups = (
            ReleaseFile.objects.filter(release=newest, study_date__isnull=False, is_annotation=False)
            .values("subject_pseudonym", "study_date", "modality")
            .annotate(images=Count("id"))
            .order_by("subject_pseudonym", "study_date", "modality")
        )
        written = 0
        batch: list[LinkageRecord] = []
        for group in groups.iterator(chunk_size=INDEX_BATCH_SIZE):
            if group["subject_pseudonym"] in excluded:
                continue
            batch.append(
                LinkageRecord(
                    society_id=dataset.society_id,
                    dataset=dataset,
                    release=newest,
                    subject_pseudonym=group["subject_pseudonym"],
                    study_date=group["study_date"],
                    modality=group["modality"],
                    image_count=group["images"],
                )
            )
            if len(batch) >= INDEX_BATCH_SIZE:
                LinkageRecord.objects.bulk_create(batch)
                written += len(batch)
                batch = []
        if batch:
            LinkageRecord.objects.bulk_create(batch)
            written += len(batch)
        return written


def linkage_forget_subject(*, pseudonym: str, datasets: Iterable[Any] | None = None) -> int:
    """Remove an opted-out subject from the index (of ``datasets`` only, when given).

    The optout services call it when a request is recorded; the next index rebuild keeps the
    subject out through ``excluded_pseudonyms``. Returns the number of rows removed.
    """
    rows = LinkageRecord.objects.filter(subject_pseudonym=pseudonym)
    if datasets is not None:
        rows = rows.filter(dataset__in=datasets)
    deleted, _per_model = rows.delete()
    return deleted


# The hooks of the lower apps (registered in LinkageConfig.ready): a release built or withdrawn
# rebuilds its dataset's index; an opt-out removes the subject from it.


def on_release_changed(*, release: Any, **_: Any) -> int:
    return linkage_index_release(release=release)


def on_optout_subject_forget(*, pseudonym: str, datasets: Iterable[Any] | None = None) -> int:
    return linkage_forget_subject(pseudonym=pseudonym, datasets=datasets)


# --- Approvals ------------------------------------------------------------------------------------


def is_operator(user: Any) -> bool:
    """The platform operator: staff, signed in with a second factor."""
    return has_role(user, Role.OPERATOR) and has_mfa(user)


def may_use_linkage(user: Any) -> bool:
    """Society admins and the platform operator may open the matching tool (approval aside)."""
    return has_role(user, Role.SOCIETY_ADMIN) or has_role(user, Role.OPERATOR)


def _require_operator(user: Any) -> None:
    if not is_operator(user):
        raise PermissionDenied(_("Only the platform operator may grant or revoke linkage approvals."))


def active_approvals(user: Any, *, on: date | None = None) -> QuerySet[LinkageApproval]:
    on = on or timezone.localdate()
    if not getattr(user, "is_authenticated", False):
        return LinkageApproval.objects.none()
    return LinkageApproval.objects.filter(user=user, revoked_at__isnull=True, valid_until__gte=on)


def approved_societies(user: Any) -> QuerySet[Society]:
    """Every society some active approval of ``user`` covers."""
    return (
        Society.objects.filter(
            pk__in=LinkageApproval.societies.through.objects.filter(
                linkageapproval__in=active_approvals(user)
            ).values("society_id")
        )
        .order_by("kind", "id")
    )


def covering_approval(user: Any, societies: Iterable[Any]) -> LinkageApproval | None:
    """The active approval of ``user`` that covers every one of ``societies`` (one query)."""
    ids = {getattr(society, "pk", society) for society in societies}
    if not ids:
        return None
    return (
        active_approvals(user)
        .annotate(covered=Count("societies", filter=Q(societies__in=ids), distinct=True))
        .filter(covered=len(ids))
        .order_by("-valid_until", "-pk")
        .first()
    )


def linkage_approval_grant(
    *, user: User, societies: Iterable[Society], purpose: str, valid_until: date, by: User
) -> LinkageApproval:
    """Allow ``user`` to run matching queries over ``societies`` until ``valid_until``."""
    _require_operator(by)
    societies = list(societies)
    purpose = (purpose or "").strip()
    errors: dict[str, str] = {}
    if len(societies) < 2:
        errors["societies"] = _("Choose at least two societies: linkage joins records across societies.")
    if not purpose:
        errors["purpose"] = _("State the purpose of the linkage.")
    if valid_until is None or valid_until < timezone.localdate():
        errors["valid_until"] = _("The approval must be valid until today or a later date.")
    if not user.is_active:
        errors["user"] = _("This account is not active.")
    if errors:
        raise ValidationError(errors)
    with transaction.atomic():
        approval = LinkageApproval.objects.create(
            user=user, purpose=purpose, valid_until=valid_until, granted_by=by
        )
        approval.societies.set(societies)
        audit_record(
            action="linkage.approval_granted",
            actor=by,
            target=approval,
            details={
                "user": user.pk,
                "societies": sorted(society.slug for society in societies),
                "valid_until": valid_until.isoformat(),
            },
        )
        _notify(
            user,
            _("Linkage approval granted"),
            _("You may now run matching queries over: %(societies)s (until %(date)s).")
            % {
                "societies": ", ".join(society.name_ja for society in societies),
                "date": valid_until.isoformat(),
            },
        )
    return approval


def linkage_approval_revoke(*, approval: LinkageApproval, by: User) -> LinkageApproval:
    _require_operator(by)
    with transaction.atomic():
        approval = LinkageApproval.objects.select_for_update().get(pk=approval.pk)
        if approval.revoked_at is not None:
            raise ValidationError(_("This approval has already been revoked."), code="revoked")
        approval.revoked_at = timezone.now()
        approval.revoked_by = by
        approval.save(update_fields=["revoked_at", "revoked_by"])
        audit_record(
            action="linkage.approval_revoked",
            actor=by,
            target=approval,
            details={"user": approval.user_id},
        )
        _notify(
            approval.user,
            _("Linkage approval revoked"),
            _("Your linkage approval valid until %(date)s has been revoked by the platform operator.")
            % {"date": approval.valid_until.isoformat()},
        )
    return approval


def _notify(user: User, subject: str, body: str) -> None:
    notification_send(
        recipients=[user], area=_("Record linkage"), subject=subject, body=body, url=reverse("linkage:search")
    )


# --- Governed queries -----------------------------------------------------------------------------


def _query_details(
    societies: list[Society], date_from: date, date_to: date, tolerance_days: int, channel: str
) -> dict[str, Any]:
    return {
        "societies": sorted(society.slug for society in societies),
        "date_from": date_from.isoformat(),
        "date_to": date_to.isoformat(),
        "tolerance_days": tolerance_days,
        "channel": channel,
    }


def _approval_or_refuse(
    user: User, societies: list[Society], details: dict[str, Any]
) -> LinkageApproval:
    if not may_use_linkage(user):
        raise PermissionDenied(_("Only society admins and the platform operator may link records."))
    approval = covering_approval(user, societies)
    if approval is None:
        audit_record(action="linkage.query_refused", actor=user, details=details)
        raise LinkageNotApproved(
            _(
                "Linked records are shown only under a linkage approval from the platform operator "
                "covering every society you chose. Ask the platform operator for an approval."
            )
        )
    return approval


def linkage_query(
    *,
    user: User,
    societies: Iterable[Society],
    date_from: date,
    date_to: date,
    tolerance_days: int,
    after: tuple[str, date] | None = None,
    limit: int | None = None,
    channel: str = "page",
) -> MatchPage:
    """One page of matches for ``user``, under an approval covering every chosen society; audited."""
    societies = list(societies)
    details = _query_details(societies, date_from, date_to, tolerance_days, channel)
    approval = _approval_or_refuse(user, societies, details)
    page = linkage_match(
        societies=societies, date_from=date_from, date_to=date_to,
        tolerance_days=tolerance_days, after=after, limit=limit or PAGE_SIZE,
    )
    audit_record(
        action="linkage.query",
        actor=user,
        target=approval,
        details=details | {"rows": len(page.matches), "continued": after is not None},
    )
    return page


def linkage_export(
    *,
    user: User,
    societies: Iterable[Society],
    date_from: date,
    date_to: date,
    tolerance_days: int,
) -> Iterator[Match]:
    """Every match, for the CSV export, under the same rule; audited before the first row.

    The rows are streamed, so their number is known only at the end: ``linkage.export`` records
    the request when it starts, ``linkage.export_completed`` the number of rows sent when the
    last one has gone.
    """
    societies = list(societies)
    details = _query_details(societies, date_from, date_to, tolerance_days, "csv")
    approval = _approval_or_refuse(user, societies, details)
    audit_record(action="linkage.export", actor=user, target=approval, details=details)
    matches = linkage_match_all(
        societies=societies, date_from=date_from, date_to=date_to, tolerance_days=tolerance_days
    )

    def stream() -> Iterator[Match]:
        rows = 0
        for match in matches:
            rows += 1
            yield match
        audit_record(
            action="linkage.export_completed",
            actor=user,
            target=approval,
            details=details | {"rows": rows},
        )

    return stream()

