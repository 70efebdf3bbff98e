from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from portal.audit.models import AuditEvent
from portal.societies.models import SocietyMembership
from portal.societies.services import (
    society_membership_add,
    society_membership_remove,
    society_update_profile,
)
from tests.factories import SocietyFactory, UserFactory


def test_society_detail_shows_both_names(client, society):
    body = client.get(f"/societies/{society.slug}/").content.decode()

    assert "日本病理学会" in body
    assert "The Japanese Society of Pathology" in body


def test_society_detail_unknown_slug_is_404(client, db):
    assert client.get("/societies/nope/").status_code == 404


def test_society_list_query_count_is_fixed(client, db, django_assert_num_queries):
    SocietyFactory.create_batch(7)

    with django_assert_num_queries(1):
        response = client.get("/societies/")

    assert response.status_code == 200
    assert response.content.decode().count('href="/societies/society-') == 7


def test_society_membership_add_audits_once(society):
    user = UserFactory()

    first = society_membership_add(society=society, user=user, role="steward", by=None)
    again = society_membership_add(society=society, user=user, role="steward", by=None)

    assert first.pk == again.pk
    events = AuditEvent.objects.filter(action="societies.membership_added")
    assert events.count() == 1
    assert events.get().details == {"society": "jsp", "user": user.email, "role": "steward"}


def test_society_membership_add_unknown_role_refused_and_nothing_written(society):
    user = UserFactory()

    with pytest.raises(ValidationError):
        society_membership_add(society=society, user=user, role="owner", by=None)

    assert SocietyMembership.objects.count() == 0
    assert AuditEvent.objects.count() == 0


def test_society_membership_add_inactive_user_refused(society):
    user = UserFactory(is_active=False)

    with pytest.raises(ValidationError):
        society_membership_add(society=society, user=user, role="member", by=None)

    assert SocietyMembership.objects.count() == 0


def test_society_membership_remove_audits_and_deletes(society_admin, society):
    membership = SocietyMembership.objects.get(user=society_admin)

    society_membership_remove(membership=membership, by=None)

    assert not SocietyMembership.objects.filter(pk=membership.pk).exists()
    assert AuditEvent.objects.filter(action="societies.membership_removed").count() == 1


def test_society_update_profile_records_changed_fields(society, society_admin):
    society_update_profile(society=society, by=society_admin, website="https://example.jp/")

    society.refresh_from_db()
    assert society.website == "https://example.jp/"
    event = AuditEvent.objects.get(action="societies.profile_updated")
    assert event.details == {"fields": ["website"]}
    assert event.actor_id == society_admin.pk


def test_society_update_profile_bad_url_refused_and_unchanged(society):
    with pytest.raises(ValidationError):
        society_update_profile(society=society, by=None, website="not a url")

    society.refresh_from_db()
    assert society.website == ""
    assert not AuditEvent.objects.filter(action="societies.profile_updated").exists()


def test_society_update_profile_unknown_field_refused(society):
    with pytest.raises(ValidationError):
        society_update_profile(society=society, by=None, slug="other")

    society.refresh_from_db()
    assert society.slug == "jsp"
