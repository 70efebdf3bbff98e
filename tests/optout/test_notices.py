"""Opt-out notices through the services: drafting, publishing rules, versions, withdrawal, refusals."""

from __future__ import annotations

from datetime import date

import pytest
from django.core.exceptions import PermissionDenied, ValidationError
from django.utils import timezone

from portal.audit.models import AuditEvent
from portal.optout import services
from portal.optout.models import OptOutNotice, OptOutNoticeVersion
from portal.optout.selectors import dataset_has_published_notice, published_notices_for
from portal.optout.workflow import OptOutRefused, TransitionNotAllowed
from tests.factories import SocietyFactory, SocietyMembershipFactory, UserFactory
from tests.factories.datasets import DatasetFactory, published_notice
from tests.factories.ethics import permitted_protocol

pytestmark = pytest.mark.django_db

V = OptOutNoticeVersion.Status


def complete_fields(**overrides):  # type: ignore[no-untyped-def]
    fields = {f"{key}_ja": f"{key} の記載" for key, _required in OptOutNoticeVersion.ITEMS}
    fields |= {"title_ja": "内視鏡画像データベースへの診療情報の提供について", "title_en": "Endoscopy image database",
               "start_date": date(2026, 4, 1), "end_date": date(2031, 3, 31)}
    return fields | overrides


@pytest.fixture
def dataset(society):  # type: ignore[no-untyped-def]
    return DatasetFactory(society=society, slug="jsp-endo", status="published")


@pytest.fixture
def draft(society, society_admin, dataset):  # type: ignore[no-untyped-def]
    return services.optout_notice_create(
        society=society, protocol=dataset.protocol, datasets=[dataset], by=society_admin, **complete_fields()
    )


def _snapshot(notice: OptOutNotice):  # type: ignore[no-untyped-def]
    notice.refresh_from_db()
    return (
        notice.status, notice.current_version_id, notice.withdrawn_at,
        list(notice.versions.order_by("number").values_list("number", "status", "title_ja", "published_at")),
        list(notice.datasets.values_list("pk", flat=True)), AuditEvent.objects.count(),
    )


def test_notice_create_numbers_per_society_and_year_and_starts_a_draft(society, society_admin, dataset, draft):
    second = services.optout_notice_create(
        society=society, protocol=dataset.protocol, by=society_admin, title_ja="二つ目のお知らせ"
    )
    year = timezone.localdate().year

    assert draft.reference == f"OPT-jsp-{year}-0001"
    assert second.reference == f"OPT-jsp-{year}-0002"
    version = draft.versions.get()
    assert (version.number, version.status, version.title_ja) == (1, V.DRAFT, complete_fields()["title_ja"])
    assert list(version.datasets.all()) == [dataset]
    assert list(draft.datasets.all()) == []  # covers nothing until published
    assert draft.status == OptOutNotice.Status.DRAFT
    assert AuditEvent.objects.filter(action="optout.notice_created", target_id=str(draft.pk)).count() == 1


def test_notice_create_refused_for_steward_and_other_society_admin(society, steward, dataset):
    other_admin = UserFactory()
    SocietyMembershipFactory(society=SocietyFactory(), user=other_admin, role="admin")
    events = AuditEvent.objects.count()

    for user in (steward, other_admin):
        with pytest.raises(PermissionDenied):
            services.optout_notice_create(society=society, protocol=dataset.protocol, by=user, **complete_fields())

    assert OptOutNotice.objects.count() == 0
    assert AuditEvent.objects.count() == events


def test_notice_create_refuses_datasets_of_another_society(society, society_admin, dataset):
    foreign = DatasetFactory(protocol=dataset.protocol)

    with pytest.raises(ValidationError) as error:
        services.optout_notice_create(
            society=society, protocol=dataset.protocol, datasets=[foreign], by=society_admin, **complete_fields()
        )

    assert "datasets" in error.value.message_dict
    assert OptOutNotice.objects.count() == 0


def test_notice_publish_makes_it_public_and_covers_its_datasets(society_admin, dataset, draft):
    version = services.optout_notice_publish(notice=draft, by=society_admin)

    draft.refresh_from_db()
    assert draft.status == OptOutNotice.Status.PUBLISHED
    assert draft.current_version == version
    assert version.status == V.PUBLISHED
    assert version.published_by == society_admin
    assert draft.first_published_at == version.published_at
    assert list(published_notices_for(dataset)) == [draft]
    assert dataset_has_published_notice(dataset) is True
    event = AuditEvent.objects.get(action="optout.notice_published")
    assert event.details["version"] == 1
    assert event.details["datasets"] == ["jsp-endo"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"purpose_and_method_ja": ""}, "Missing (in Japanese): Purpose and method of use"),
        ({"how_to_request_ja": "  "}, "Missing (in Japanese): How such requests are received"),
        ({"contact_ja": ""}, "Missing (in Japanese): Contact for enquiries"),
        ({"start_date": None}, "Missing: the planned start of use or provision."),
    ],
)
def test_notice_publish_refused_while_a_required_item_is_missing(society, society_admin, dataset, overrides, expected):
    notice = services.optout_notice_create(
        society=society, protocol=dataset.protocol, datasets=[dataset], by=society_admin,
        **complete_fields(**overrides),
    )
    before = _snapshot(notice)

    with pytest.raises(ValidationError) as error:
        services.optout_notice_publish(notice=notice, by=society_admin)

    assert any(message.startswith(expected) for message in error.value.messages), error.value.messages
    assert _snapshot(notice) == before


def test_notice_publish_does_not_need_the_optional_foreign_provision_item(society_admin, draft):
    services.optout_notice_update_draft(notice=draft, by=society_admin, foreign_provision_info_ja="")

    services.optout_notice_publish(notice=draft, by=society_admin)

    assert draft.versions.get().status == V.PUBLISHED


def test_notice_publish_refused_when_the_protocol_does_not_allow_data_to_flow(society, society_admin):
    suspended = permitted_protocol(status="suspended")
    dataset = DatasetFactory(society=society, protocol=suspended)
    notice = services.optout_notice_create(
        society=society, protocol=suspended, datasets=[dataset], by=society_admin, **complete_fields()
    )
    before = _snapshot(notice)

    with pytest.raises(ValidationError) as error:
        services.optout_notice_publish(notice=notice, by=society_admin)

    assert error.value.messages == ["The research protocol does not allow data to flow: The protocol is “Suspended”."]
    assert _snapshot(notice) == before


def test_notice_publish_refused_for_a_dataset_on_another_protocol(society, society_admin, dataset, draft):
    other = DatasetFactory(society=society)  # its own permitted protocol

    with pytest.raises(ValidationError):
        services.optout_notice_update_draft(notice=draft, by=society_admin, datasets=[dataset, other])

    assert list(draft.versions.get().datasets.all()) == [dataset]


def test_published_version_is_never_edited(society_admin, draft):
    services.optout_notice_publish(notice=draft, by=society_admin)
    before = _snapshot(draft)

    with pytest.raises(OptOutRefused):
        services.optout_notice_update_draft(notice=draft, by=society_admin, purpose_and_method_ja="書き換え")

    assert _snapshot(draft) == before


def test_new_version_supersedes_the_published_one_which_is_kept(society_admin, dataset, draft):
    first = services.optout_notice_publish(notice=draft, by=society_admin)
    second = services.optout_notice_new_version(notice=draft, change_summary="問い合わせ先を変更", by=society_admin)

    assert (second.number, second.status, second.purpose_and_method_ja) == (2, V.DRAFT, first.purpose_and_method_ja)
    assert list(second.datasets.all()) == [dataset]
    draft.refresh_from_db()
    assert draft.current_version == first  # the public still reads version 1 while 2 is drafted

    services.optout_notice_update_draft(notice=draft, by=society_admin, contact_ja="新しい窓口 03-0000-0000")
    services.optout_notice_publish(notice=draft, by=society_admin)

    draft.refresh_from_db()
    first.refresh_from_db()
    second.refresh_from_db()
    assert draft.current_version == second
    assert (first.status, first.contact_ja) == (V.SUPERSEDED, "contact の記載")
    assert (second.status, second.contact_ja) == (V.PUBLISHED, "新しい窓口 03-0000-0000")
    assert draft.first_published_at == first.published_at


def test_new_version_refused_without_a_change_summary_or_while_one_is_drafted(society_admin, draft):
    with pytest.raises(OptOutRefused):  # not published yet
        services.optout_notice_new_version(notice=draft, change_summary="変更", by=society_admin)
    services.optout_notice_publish(notice=draft, by=society_admin)
    with pytest.raises(ValidationError):
        services.optout_notice_new_version(notice=draft, change_summary=" ", by=society_admin)
    services.optout_notice_new_version(notice=draft, change_summary="変更", by=society_admin)
    before = _snapshot(draft)

    with pytest.raises(OptOutRefused):
        services.optout_notice_new_version(notice=draft, change_summary="もう一つ", by=society_admin)

    assert _snapshot(draft) == before


def test_withdraw_reports_datasets_left_without_a_notice_and_they_stay_published(society_admin, dataset, draft):
    services.optout_notice_publish(notice=draft, by=society_admin)
    other = published_notice(DatasetFactory(society=dataset.society))

    left = services.optout_notice_withdraw(notice=draft, reason="研究終了のため", by=society_admin)

    assert left == [dataset]
    draft.refresh_from_db()
    dataset.refresh_from_db()
    assert draft.status == OptOutNotice.Status.WITHDRAWN
    assert draft.withdrawal_reason == "研究終了のため"
    assert dataset.status == "published"
    assert dataset_has_published_notice(dataset) is False
    assert other.status == OptOutNotice.Status.PUBLISHED
    event = AuditEvent.objects.get(action="optout.notice_withdrawn")
    assert event.details["datasets_left_without_notice"] == ["jsp-endo"]


def test_withdraw_reports_nothing_when_another_notice_covers_the_dataset(society_admin, dataset, draft):
    services.optout_notice_publish(notice=draft, by=society_admin)
    published_notice(dataset)

    assert services.optout_notice_withdraw(notice=draft, reason="統合", by=society_admin) == []
    assert dataset_has_published_notice(dataset) is True


def test_withdrawn_notice_cannot_be_published_again_or_edited(society_admin, draft):
    services.optout_notice_withdraw(notice=draft, reason="作成中止", by=society_admin)
    before = _snapshot(draft)

    with pytest.raises(TransitionNotAllowed):
        services.optout_notice_publish(notice=draft, by=society_admin)
    with pytest.raises(OptOutRefused):
        services.optout_notice_update_draft(notice=draft, by=society_admin, title_ja="再開")
    with pytest.raises(TransitionNotAllowed):
        services.optout_notice_withdraw(notice=draft, reason="二度目", by=society_admin)

    assert _snapshot(draft) == before


def test_withdraw_refused_without_reason_or_for_a_steward(society_admin, steward, draft):
    before = _snapshot(draft)

    with pytest.raises(ValidationError):
        services.optout_notice_withdraw(notice=draft, reason="", by=society_admin)
    with pytest.raises(PermissionDenied):
        services.optout_notice_withdraw(notice=draft, reason="理由", by=steward)

    assert _snapshot(draft) == before


def test_operator_may_manage_any_society_notices(society, dataset):
    operator = UserFactory(is_staff=True)

    notice = services.optout_notice_create(
        society=society, protocol=dataset.protocol, datasets=[dataset], by=operator, **complete_fields()
    )
    services.optout_notice_publish(notice=notice, by=operator)

    assert dataset_has_published_notice(dataset) is True


def test_model_refuses_to_save_changes_to_a_published_version(society_admin, draft):
    version = services.optout_notice_publish(notice=draft, by=society_admin)
    version.purpose_and_method_ja = "こっそり書き換え"

    with pytest.raises(ValidationError):
        version.save()

    version.refresh_from_db()
    assert version.purpose_and_method_ja == "purpose_and_method の記載"
