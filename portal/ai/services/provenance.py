"""Provenance notices: versions built on a withdrawn release or on opted-out subjects."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from django.db.models import Q
from django.utils.translation import gettext as _

from portal.accounts.models import User
from portal.ai.models import ModelVersion, ProvenanceNotice
from portal.ai.services._common import USE_LABELS, _model_url, _send
from portal.audit.services import audit_record
from portal.datasets.models import DatasetRelease
from portal.societies.models import SocietyMembership
from portal.societies.selectors import member_users


def _versions_built_on(release_ids: Iterable[int]) -> list[tuple[ModelVersion, set[int], set[int]]]:
    """Versions trained or evaluated on any of these releases, with which (training, evaluation)."""
    ids = list(release_ids)
    if not ids:
        return []
    versions = (
        ModelVersion.objects.filter(Q(training_releases__in=ids) | Q(evaluation_releases__in=ids))
        .distinct().select_related("model").order_by("id")
    )
    found = []
    for version in versions:
        training = set(version.training_releases.filter(pk__in=ids).values_list("pk", flat=True))
        evaluation = set(version.evaluation_releases.filter(pk__in=ids).values_list("pk", flat=True))
        found.append((version, training, evaluation))
    return found


def _flag(
    *, version: ModelVersion, release: DatasetRelease, kind: str, details: dict[str, Any], uses: list[str],
    by: User | None,
) -> ProvenanceNotice:
    notice = ProvenanceNotice.objects.create(version=version, release=release, kind=kind, details=details)
    audit_record(
        action="ai.provenance_flagged", actor=by, actor_email="" if by is not None else "portal", target=version,
        details={"model": version.model.slug, "version": version.version, "release": str(release),
                 "kind": kind, "uses": uses, **details},
    )
    return notice


def _used_for(uses: list[str]) -> str:
    return ", ".join(str(USE_LABELS[use]) for use in uses)


def _uses(release_id: int, training: set[int], evaluation: set[int]) -> list[str]:
    return [name for name, ids in (("training", training), ("evaluation", evaluation)) if release_id in ids]


def provenance_release_withdrawn(*, release: DatasetRelease, by: User | None = None) -> list[ProvenanceNotice]:
    """A release a version was trained or evaluated on was withdrawn: notice on the card, admins told.

    Called inside ``portal.datasets.services.release_withdraw``'s transaction."""
    notices = []
    for version, training, evaluation in _versions_built_on([release.pk]):
        uses = _uses(release.pk, training, evaluation)
        notices.append(_flag(
            version=version, release=release, kind=ProvenanceNotice.Kind.RELEASE_WITHDRAWN,
            details={"reason": release.withdrawal_reason}, uses=uses, by=by,
        ))
        _send(
            _("A release model %(model)s %(version)s was built on was withdrawn") % {
                "model": version.model.slug, "version": version.version},
            _("Release %(release)s (%(uses)s) was withdrawn: %(reason)s") % {
                "release": str(release), "uses": _used_for(uses), "reason": release.withdrawal_reason},
            member_users(version.model.society_id, SocietyMembership.Role.ADMIN),
            _model_url(version.model),
        )
    return notices


def provenance_subjects_opted_out(
    *, releases: Iterable[DatasetRelease], reference: str, counts: dict[int, int], by: User | None = None,
) -> list[ProvenanceNotice]:
    """Subjects in releases a version was built on opted out: notice (reference and file count only).

    Called inside ``portal.optout.services.optout_request_record``'s transaction."""
    by_id = {release.pk: release for release in releases}
    notices = []
    for version, training, evaluation in _versions_built_on(by_id):
        for release_id in sorted(training | evaluation):
            release = by_id[release_id]
            uses = _uses(release_id, training, evaluation)
            files = int(counts.get(release_id, 0))
            notices.append(_flag(
                version=version, release=release, kind=ProvenanceNotice.Kind.SUBJECTS_OPTED_OUT,
                details={"reference": reference, "files": files}, uses=uses, by=by,
            ))
            _send(
                _("Subjects of a release model %(model)s %(version)s was built on opted out") % {
                    "model": version.model.slug, "version": version.version},
                _("Opt-out request %(reference)s concerns %(files)d files of release %(release)s (%(uses)s).") % {
                    "reference": reference, "files": files, "release": str(release), "uses": _used_for(uses)},
                member_users(version.model.society_id, SocietyMembership.Role.ADMIN),
                _model_url(version.model),
            )
    return notices


