"""Each end state its own status: existing ``closed`` protocols get the end state they came from.

The rule, in order, for a protocol whose status was ``closed``:

1. its last ``ethics.protocol_withdrawn`` audit event: withdrawn (取下げ);
2. its last ``ethics.protocol_closed`` audit event: the ``from`` state recorded there (completed,
   not_approved, not_subject or denied: 終了, 不承認, 非該当, 不許可);
3. with no audit event (data written outside the services): the head's decision on its latest
   version (not permitted: denied; permitted: completed), else the committee's opinion on it
   (not approved or not subject), else withdrawn.

Every protocol in an end state gets ``ended_at`` (the time of its last audit event, else its last
update). A completed protocol gets ``end_report`` from its ``ethics.completion_reported`` event;
without one, a note saying the report was not recorded before this change. The constraints that
state these rules are added once the rows comply.
"""

from __future__ import annotations

from django.db import migrations, models

END_STATES = ["completed", "denied", "discontinued", "not_approved", "not_subject", "withdrawn"]
CLOSED_FROM = {"completed", "not_approved", "not_subject", "denied"}
REPORT_NOT_RECORDED = "（この終了報告の本文は、報告の保存が始まる前に提出されたため記録されていません）"


def _events(AuditEvent, protocol_pk, action):
    return AuditEvent.objects.filter(
        target_type="ethics.protocol", target_id=str(protocol_pk), action=action
    ).order_by("-id")


def _fallback_end_state(protocol):
    version = protocol.versions.order_by("-number").first()
    if version is None:
        return "withdrawn"
    head = getattr(version, "head_decision", None)
    if head is not None:
        return "completed" if head.permitted else "denied"
    decision = getattr(getattr(version, "review", None), "decision", None)
    if decision is not None and decision.outcome in {"not_approved", "not_subject"}:
        return decision.outcome
    return "withdrawn"


def _end_state_of_closed(AuditEvent, protocol):
    withdrawn = _events(AuditEvent, protocol.pk, "ethics.protocol_withdrawn").first()
    closed = _events(AuditEvent, protocol.pk, "ethics.protocol_closed").first()
    if withdrawn is not None and (closed is None or withdrawn.id > closed.id):
        return "withdrawn"
    if closed is not None and (closed.details or {}).get("from") in CLOSED_FROM:
        return closed.details["from"]
    return _fallback_end_state(protocol)


def forwards(apps, schema_editor):
    Protocol = apps.get_model("ethics", "Protocol")
    AuditEvent = apps.get_model("audit", "AuditEvent")
    rows = Protocol.objects.filter(
        models.Q(status="closed") | models.Q(status__in=END_STATES, ended_at__isnull=True)
    ).order_by("pk")
    for protocol in rows:
        status = _end_state_of_closed(AuditEvent, protocol) if protocol.status == "closed" else protocol.status
        changes = {"status": status}
        if protocol.ended_at is None:
            last = AuditEvent.objects.filter(
                target_type="ethics.protocol", target_id=str(protocol.pk)
            ).order_by("-id").first()
            changes["ended_at"] = last.created_at if last is not None else protocol.updated_at
        if status == "completed" and not protocol.end_report:
            report = _events(AuditEvent, protocol.pk, "ethics.completion_reported").first()
            changes["end_report"] = (
                (report.details or {}).get("report") if report is not None else ""
            ) or REPORT_NOT_RECORDED
        # One update a row, so the row satisfies the end-state constraints at every moment.
        Protocol.objects.filter(pk=protocol.pk).update(**changes)


def backwards(apps, schema_editor):
    Protocol = apps.get_model("ethics", "Protocol")
    Protocol.objects.filter(status__in=["withdrawn", "discontinued"]).update(status="closed")
    Protocol.objects.update(ended_at=None)


class Migration(migrations.Migration):
    dependencies = [
        ("audit", "0002_append_only_trigger"),
        ("ethics", "0004_review_record_recusal_end_states"),
    ]

    operations = [
        migrations.RunPython(forwards, backwards),
    ]
