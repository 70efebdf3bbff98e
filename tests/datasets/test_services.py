"""Datasets through their services: who may act, field rules, publishing rules, every transition."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.datasets import services
from portal.datasets.models import Dataset, DatasetStatus
from portal.datasets.workflow import ALL_EDGES, TRANSITIONS, TransitionNotAllowed, target_state
from portal.ethics.models import Protocol
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory
from tests.factories.datasets import DatasetFactory, published_notice
from tests.factories.ethics import EthicsCommitteeFactory, permitted_protocol

pytestmark = pytest.mark.django_db

S = DatasetStatus


def _fields(protocol: Protocol, **overrides):  # type: ignore[no-untyped-def]
    return {
        "slug": "jsp-gastric", "title_ja": "胃生検病理画像", "title_en": "Gastric biopsy slides",
        "modality": "pathology_wsi", "annotation_granularity": "diagnosis", "legal_status": "pseudonymised",
        "access_tier": "controlled", "protocol": protocol, "case_count": 10, "image_count": 20,
        "collection_start": date(2020, 1, 1), "collection_end": date(2023, 12, 31),
    } | overrides


def _unpermitted_protocol() -> Protocol:
    committee = EthicsCommitteeFactory()
    return Protocol.objects.create(
        number="T-DRAFT", committee=committee, principal_investigator=UserFactory(),
        institution=committee.institution, status="draft",
    )


def _events(action: str) -> int:
    return AuditEvent.objects.filter(action=action).count()


# --- Creating and editing ---------------------------------------------------------------------


def test_dataset_create_by_society_admin_writes_draft_and_audit(society, society_admin):
    protocol = permitted_protocol()
    dataset = services.dataset_create(society=society, by=society_admin, **_fields(protocol))

    assert dataset.status == S.DRAFT
    assert dataset.society == society
    assert dataset.protocol == protocol
    assert dataset.created_by == society_admin
    event = AuditEvent.objects.get(action="datasets.dataset_created")
    assert event.target_id == str(dataset.pk)
    assert event.details == {"society": "jsp", "slug": "jsp-gastric"}


def test_dataset_create_by_operator_of_any_society(society):
    operator = UserFactory(is_staff=True)
    dataset = services.dataset_create(society=society, by=operator, **_fields(permitted_protocol()))
    assert dataset.society == society


@pytest.mark.parametrize("who", ["outsider", "steward", "other_admin"])
def test_dataset_create_refused_to_non_admins(society, outsider, steward, who):
    user = {"outsider": outsider, "steward": steward}.get(who)
    if who == "other_admin":
        user = UserFactory()
        SocietyMembershipFactory(society=SocietyFactory(slug="jges"), user=user, role="admin")
    with pytest.raises(PermissionDenied):
        services.dataset_create(society=society, by=user, **_fields(permitted_protocol()))
    assert Dataset.objects.count() == 0
    assert _events("datasets.dataset_created") == 0


def test_dataset_create_validates_every_field_at_once(society, society_admin):
    fields = _fields(
        999_999, slug="Bad Slug", title_ja=" ", modality="photo", case_count=-1,
        collection_start=date(2024, 1, 2), collection_end=date(2024, 1, 1),
    )
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_create(society=society, by=society_admin, **fields)

    errors = excinfo.value.message_dict
    assert errors == {
        "slug": ["Use only lower-case letters, digits and hyphens in the short name."],
        "title_ja": ["Give the dataset a Japanese title."],
        "modality": ["Choose a modality from the list."],
        "case_count": ["Enter a number of zero or more."],
        "collection_end": ["The collection period must end on or after the day it starts."],
        "protocol": ["Choose the research protocol the dataset rests on."],
    }
    assert Dataset.objects.count() == 0


def test_dataset_create_refuses_a_slug_in_use(society, society_admin):
    DatasetFactory(slug="jsp-gastric")
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_create(society=society, by=society_admin, **_fields(permitted_protocol()))
    assert excinfo.value.message_dict == {"slug": ["Another dataset already uses this short name."]}
    assert Dataset.objects.count() == 1


def test_dataset_create_refuses_a_reserved_slug(society, society_admin):
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_create(society=society, by=society_admin, **_fields(permitted_protocol(), slug="statistics"))
    assert excinfo.value.message_dict == {"slug": ["This short name is reserved; choose another."]}
    assert Dataset.objects.count() == 0


def test_dataset_update_changes_fields_and_audits(society, society_admin):
    dataset = DatasetFactory(society=society)
    services.dataset_update(dataset=dataset, by=society_admin, title_ja="新しい題名", case_count=5)

    dataset.refresh_from_db()
    assert dataset.title_ja == "新しい題名"
    assert dataset.case_count == 5
    assert AuditEvent.objects.get(action="datasets.dataset_updated").details == {
        "fields": ["case_count", "title_ja"]
    }


def test_dataset_update_protocol_and_society_fixed_once_published(society, society_admin):
    dataset = DatasetFactory(society=society, status=S.PUBLISHED)
    old_protocol = dataset.protocol
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_update(dataset=dataset, by=society_admin, protocol=permitted_protocol())
    assert excinfo.value.message_dict == {
        "protocol": ["This cannot change once the dataset has been published."]
    }
    dataset.refresh_from_db()
    assert dataset.protocol == old_protocol
    assert _events("datasets.dataset_updated") == 0


def test_dataset_update_refused_to_outsider(society, outsider):
    dataset = DatasetFactory(society=society, title_ja="元の題名")
    with pytest.raises(PermissionDenied):
        services.dataset_update(dataset=dataset, by=outsider, title_ja="乗っ取り")
    dataset.refresh_from_db()
    assert dataset.title_ja == "元の題名"


# --- Publishing rules -------------------------------------------------------------------------


def test_dataset_publish_succeeds_with_permitted_protocol_and_published_notice(society, society_admin):
    dataset = DatasetFactory(society=society)
    published_notice(dataset)

    services.dataset_publish(dataset=dataset, by=society_admin)

    dataset.refresh_from_db()
    assert dataset.status == S.PUBLISHED
    assert dataset.published_at is not None
    assert AuditEvent.objects.get(action="datasets.dataset_published").details == {
        "from": "draft", "to": "published", "republished": False,
    }


def _assert_publish_refused(dataset, by, messages):  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_publish(dataset=dataset, by=by)
    assert excinfo.value.messages == messages
    dataset.refresh_from_db()
    assert dataset.status == S.DRAFT
    assert dataset.published_at is None
    assert _events("datasets.dataset_published") == 0


def test_dataset_publish_refused_without_published_notice(society, society_admin):
    dataset = DatasetFactory(society=society)
    _assert_publish_refused(dataset, society_admin, ["No published opt-out notice covers this dataset."])


def test_dataset_publish_refused_without_permitted_protocol(society, society_admin):
    dataset = DatasetFactory(society=society, protocol=_unpermitted_protocol())
    published_notice(dataset)
    _assert_publish_refused(dataset, society_admin, ["The protocol has not been approved and permitted."])


def test_dataset_publish_refused_under_suspended_protocol(society, society_admin):
    dataset = DatasetFactory(society=society, protocol=permitted_protocol(status="suspended"))
    published_notice(dataset)
    _assert_publish_refused(dataset, society_admin, ["The protocol is “Suspended”."])


def test_dataset_publish_refused_under_expired_approval_lists_every_reason(society, society_admin):
    protocol = permitted_protocol(approved_days=-1)
    dataset = DatasetFactory(society=society, protocol=protocol)
    _assert_publish_refused(dataset, society_admin, [
        f"The approval period ended on {protocol.approved_until}.",
        "No published opt-out notice covers this dataset.",
    ])


def test_dataset_publish_refused_when_notice_was_withdrawn(society, society_admin):
    dataset = DatasetFactory(society=society)
    notice = published_notice(dataset)
    notice.status = notice.Status.WITHDRAWN
    notice.withdrawn_at = timezone.now()
    notice.withdrawal_reason = "試験のため取下げ"
    notice.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])
    _assert_publish_refused(dataset, society_admin, ["No published opt-out notice covers this dataset."])


def test_dataset_publish_refused_to_steward(society, steward):
    dataset = DatasetFactory(society=society)
    published_notice(dataset)
    with pytest.raises(PermissionDenied):
        services.dataset_publish(dataset=dataset, by=steward)
    dataset.refresh_from_db()
    assert dataset.status == S.DRAFT


def test_dataset_publish_checks_list_both_conditions(society):
    dataset = DatasetFactory(society=society)
    checks = services.dataset_publish_checks(dataset)
    assert [(c.ok, c.label, c.reason) for c in checks] == [
        (True, "The research protocol is approved and permitted", "Approved and permitted."),
        (False, "A published opt-out notice covers the dataset", "No published opt-out notice covers this dataset."),
    ]


# --- Transitions, edge by edge ----------------------------------------------------------------


def test_transition_table_is_exactly_these_edges():
    edges = set(ALL_EDGES)
    assert edges == {
        ("publish", S.DRAFT, S.PUBLISHED),
        ("publish", S.WITHDRAWN, S.PUBLISHED),
        ("withdraw", S.PUBLISHED, S.WITHDRAWN),
    }


@pytest.mark.parametrize("action", sorted(TRANSITIONS))
@pytest.mark.parametrize("state", list(S.values))
def test_target_state_refuses_every_edge_not_in_table(action, state):
    if state in TRANSITIONS[action]:
        assert target_state(action, state) == TRANSITIONS[action][state]
    else:
        with pytest.raises(TransitionNotAllowed):
            target_state(action, state)


def test_publish_refused_when_already_published(society, society_admin):
    dataset = DatasetFactory(society=society, status=S.PUBLISHED)
    published_notice(dataset)
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_publish(dataset=dataset, by=society_admin)
    assert excinfo.value.messages == ["The dataset is already published."]
    assert _events("datasets.dataset_published") == 0


def test_withdraw_published_records_reason(society, society_admin):
    dataset = DatasetFactory(society=society)
    published_notice(dataset)
    services.dataset_publish(dataset=dataset, by=society_admin)
    services.dataset_withdraw(dataset=dataset, reason="匿名化の不備が見つかったため", by=society_admin)

    dataset.refresh_from_db()
    assert dataset.status == S.WITHDRAWN
    assert dataset.withdrawal_reason == "匿名化の不備が見つかったため"
    assert dataset.withdrawn_at is not None
    assert AuditEvent.objects.get(action="datasets.dataset_withdrawn").details == {
        "from": "published", "to": "withdrawn", "reason": "匿名化の不備が見つかったため",
    }


def test_withdraw_needs_a_reason(society, society_admin):
    dataset = DatasetFactory(society=society, status=S.PUBLISHED)
    with pytest.raises(ValidationError) as excinfo:
        services.dataset_withdraw(dataset=dataset, reason="  ", by=society_admin)
    assert excinfo.value.message_dict == {"reason": ["Say why the dataset is withdrawn."]}
    dataset.refresh_from_db()
    assert dataset.status == S.PUBLISHED


def test_withdraw_refused_for_draft(society, society_admin):
    dataset = DatasetFactory(society=society)
    with pytest.raises(TransitionNotAllowed) as excinfo:
        services.dataset_withdraw(dataset=dataset, reason="理由", by=society_admin)
    assert excinfo.value.messages == ["This cannot be done while the dataset is “Draft”; it must be Published."]
    dataset.refresh_from_db()
    assert dataset.status == S.DRAFT
    assert dataset.withdrawal_reason == ""


def test_withdrawn_dataset_may_be_published_again_under_the_same_rules(society, society_admin):
    dataset = DatasetFactory(society=society)
    notice = published_notice(dataset)
    services.dataset_publish(dataset=dataset, by=society_admin)
    services.dataset_withdraw(dataset=dataset, reason="一時停止", by=society_admin)
    notice.status = notice.Status.WITHDRAWN
    notice.withdrawn_at = timezone.now()
    notice.withdrawal_reason = "試験のため取下げ"
    notice.save(update_fields=["status", "withdrawn_at", "withdrawal_reason"])

    with pytest.raises(ValidationError):
        services.dataset_publish(dataset=dataset, by=society_admin)
    dataset.refresh_from_db()
    assert dataset.status == S.WITHDRAWN

    published_notice(dataset)
    services.dataset_publish(dataset=dataset, by=society_admin)
    dataset.refresh_from_db()
    assert dataset.status == S.PUBLISHED
    assert dataset.withdrawal_reason == ""
    assert dataset.withdrawn_at is None
    assert [event.details["republished"] for event in
            AuditEvent.objects.filter(action="datasets.dataset_published").order_by("id")] == [False, True]
