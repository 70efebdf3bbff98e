"""Protocol choices name the protocol as people know it (number, title, status); technical
fields say what they are for."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.access.request_forms import RequestForm
from portal.datasets.forms import DatasetForm
from portal.ethics.fields import with_titles
from portal.ethics.models import Protocol, ProtocolItem, ProtocolVersion
from portal.optout.forms import NoticeCreateForm, RequestRecordForm
from tests.factories.ethics import permitted_protocol

pytestmark = pytest.mark.django_db

TITLE = "胃癌の病理画像を用いた深層学習による診断支援システムの開発に関する多施設共同研究（第二版）"
SHORT = "胃癌の病理画像を用いた深層学習による診断支援システムの開発に関する多施設共同研…"


def _titled(protocol: Protocol, title: str = TITLE) -> Protocol:
    version = protocol.versions.get(number=1)
    ProtocolItem.objects.create(version=version, key="title", body=title)
    return protocol


def _labels(field) -> list[str]:  # type: ignore[no-untyped-def]
    return [str(label) for _value, label in field.choices if _value != ""]


def test_dataset_form_protocol_choice_shows_number_title_and_status(society):
    protocol = _titled(permitted_protocol())

    form = DatasetForm(societies=None)

    assert _labels(form.fields["protocol"]) == [
        f"{protocol.number} — {SHORT} (Active)"
    ]


def test_dataset_page_protocol_choice_in_japanese(client, society_admin):
    protocol = _titled(permitted_protocol())
    client.force_login(society_admin)

    body = client.get(reverse("datasets:create")).content.decode()

    assert f"{protocol.number} — {SHORT} (実施中)" in body


def test_protocol_choice_title_is_that_of_the_newest_submitted_version(society):
    protocol = _titled(permitted_protocol(), "旧い名称")
    draft = ProtocolVersion.objects.create(protocol=protocol, number=2)  # not submitted: not shown
    ProtocolItem.objects.create(version=draft, key="title", body="下書きの名称")

    assert _labels(DatasetForm(societies=None).fields["protocol"]) == [f"{protocol.number} — 旧い名称 (Active)"]


def test_protocol_choice_without_title_shows_number_and_status(society):
    protocol = permitted_protocol(status="approved")

    assert _labels(DatasetForm(societies=None).fields["protocol"]) == [
        f"{protocol.number} (Approved (awaiting the head's permission))"
    ]


def test_protocol_choices_are_listed_in_one_query(society, django_assert_num_queries):
    for _index in range(4):
        _titled(permitted_protocol())
    form = DatasetForm(societies=None)

    with django_assert_num_queries(1):
        labels = _labels(form.fields["protocol"])

    assert len(labels) == 4


def test_application_form_protocol_choice_shows_number_title_and_status(applicant):
    protocol = _titled(permitted_protocol())
    Protocol.objects.filter(pk=protocol.pk).update(principal_investigator=applicant)

    form = RequestForm(user=applicant)

    assert _labels(form.fields["ethics_protocol"]) == [
        f"{protocol.number} — {SHORT} (Active)"
    ]
    assert form.fields["ethics_protocol"].help_text


def test_optout_forms_protocol_choices_show_titles(society_admin):
    protocol = _titled(permitted_protocol())
    expected = [f"{protocol.number} — {SHORT} (Active)"]

    assert _labels(NoticeCreateForm(user=society_admin).fields["protocol"]) == expected
    assert _labels(RequestRecordForm(user=society_admin).fields["protocols"]) == expected


def test_with_titles_keeps_the_filter(society):
    shown = _titled(permitted_protocol())
    _titled(permitted_protocol(), "別の研究")

    assert [p.title for p in with_titles(Protocol.objects.filter(pk=shown.pk))] == [TITLE]


@pytest.mark.parametrize("name", ["slug", "protocol", "legal_status", "access_tier", "annotation_granularity",
                                  "annotation_format"])
def test_dataset_form_technical_field_says_what_it_is_for(society, name):
    assert DatasetForm(societies=None).fields[name].help_text


def test_dataset_page_explains_the_slug_in_japanese(client, society_admin):
    client.force_login(society_admin)

    body = client.get(reverse("datasets:create")).content.decode()

    assert "URLに使う英数字の識別子" in body


@pytest.mark.parametrize("name", ["ethics_protocol", "legal_basis", "processing_level", "signatory_email"])
def test_application_form_technical_field_says_what_it_is_for(applicant, name):
    assert RequestForm(user=applicant).fields[name].help_text
