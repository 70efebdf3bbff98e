"""The ethics committee sees what was released under a protocol and how it was anonymised."""

from __future__ import annotations

import pytest
from django.urls import reverse

from portal.deid.models import DeidJob
from portal.deid.selectors import deid_reports_for_protocol
from tests.factories import UserFactory
from tests.factories.datasets import DatasetFactory, FileSpec, make_release
from tests.factories.ethics import CommitteeMembershipFactory, permitted_protocol

pytestmark = pytest.mark.django_db

REPORT = {"table_edition": "2024b", "options": ["LMD"], "actions": {"X": 12, "U": 3},
          "files_by_status": {"changed": 2}, "files_by_kind": {"dicom": 2}}


def _released(protocol):  # type: ignore[no-untyped-def]
    dataset = DatasetFactory(protocol=protocol, slug="jrs-ct")
    job = DeidJob.objects.create(society=dataset.society, dataset=dataset, source_kind="upload",
                                 status="finished", total=2, done=2, report=REPORT)
    from_job = make_release(dataset, [FileSpec("a" * 32)], store=False, source="deid_job",
                            source_reference=f"deid-job-{job.pk}")
    imported = make_release(dataset, [FileSpec("b" * 32)], store=False)
    return job, from_job, imported


def test_reports_for_protocol_pair_each_release_with_its_job_report():
    protocol = permitted_protocol()
    job, from_job, imported = _released(protocol)
    DatasetFactory(slug="elsewhere")  # another protocol's dataset: not listed

    rows = deid_reports_for_protocol(protocol)

    assert [(release, report and report["job_id"]) for release, report in rows] == [
        (from_job, job.pk), (imported, None)]
    assert rows[0][1]["actions"] == {"X": 12, "U": 3}


def test_committee_member_sees_the_anonymisation_report_on_the_protocol(client):
    protocol = permitted_protocol()
    _released(protocol)
    member = UserFactory()
    CommitteeMembershipFactory(committee=protocol.committee, user=member)
    from tests.factories import give_totp

    give_totp(member)
    client.force_login(member)

    page = client.get(reverse("ethics:protocol_detail", args=[protocol.pk])).content.decode()

    assert 'data-testid="released-data"' in page and 'data-testid="deid-report"' in page
    assert "<code>LMD</code>" in page and "2024b" in page
