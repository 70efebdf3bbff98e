"""Each menu link names its page as the page's own heading does (one term per thing)."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.utils import translation

from portal.core.context_processors import NAVIGATION, NAVIGATION_GROUPS
from tests.factories import (
    OrganizationFactory,
    OrganizationMembershipFactory,
    SocietyMembershipFactory,
    UserFactory,
    give_totp,
)

# Pages whose heading is not a name for the link: the home page greets, the admin is Django's.
NOT_NAMED_BY_HEADING = {"home", "admin:index", "api-docs"}
# Links that open one society's page: its heading is the label qualified by the society's name.
QUALIFIED_BY_SOCIETY = {"access:society_overview_index"}


def _every_link() -> list[tuple[str, str]]:
    items = [*NAVIGATION, *(item for group in NAVIGATION_GROUPS for item in group.items)]
    return [(item.url_name, item.label) for item in items if item.url_name not in NOT_NAMED_BY_HEADING]


@pytest.fixture
def everyone(society):  # type: ignore[no-untyped-def]
    """One person holding every role, so that every menu link leads to a page they may see."""
    from tests.factories.ethics import CommitteeMembershipFactory, EthicsCommitteeFactory

    user = UserFactory(email="all@example.jp", is_staff=True, is_superuser=True)
    for role in ("admin", "steward", "access_committee"):
        SocietyMembershipFactory(society=society, user=user, role=role)
    OrganizationMembershipFactory(user=user, organization=OrganizationFactory(kind="university"), role="head")
    OrganizationMembershipFactory(user=user, organization=OrganizationFactory(kind="operator"), role="auditor")
    CommitteeMembershipFactory(committee=EthicsCommitteeFactory(), user=user)
    CommitteeMembershipFactory(committee=EthicsCommitteeFactory(), user=user, role="secretariat")
    give_totp(user)
    return user


def _heading(body: str) -> str:
    match = re.search(r"<h1[^>]*>(.*?)</h1>", body, re.S)
    assert match, "the page has no <h1>"
    return unescape(re.sub(r"<[^>]+>", "", match.group(1))).strip()


@pytest.mark.parametrize(("url_name", "label"), _every_link(), ids=lambda value: str(value))
def test_menu_label_equals_page_heading_in_japanese(client, society, everyone, url_name, label):
    from django.urls import reverse

    client.force_login(everyone)

    response = client.get(reverse(url_name), follow=True)

    assert response.status_code == 200
    heading = _heading(response.content.decode())
    with translation.override("ja"):
        if url_name in QUALIFIED_BY_SOCIETY:
            assert heading == f"{society.name_ja} の{label}"
        else:
            assert heading == str(label)


BREADCRUMB_LINK = re.compile(r"""<a href="\{% url '([\w:-]+)' %\}">\{% translate "([^"]+)" %\}</a>""")


def test_breadcrumbs_name_menu_pages_as_the_menu_does():
    """A breadcrumb back to a page of the menu uses the menu's words (templates read, not rendered)."""
    from pathlib import Path

    from django.conf import settings

    labels = {item.url_name: item.label for item in
              [*NAVIGATION, *(item for group in NAVIGATION_GROUPS for item in group.items)]}
    differing = []
    with translation.override("ja"):
        for template in sorted(Path(settings.BASE_DIR, "templates").rglob("*.html")):
            for line in template.read_text(encoding="utf-8").splitlines():
                if 'class="breadcrumb"' not in line:
                    continue
                for url_name, msgid in BREADCRUMB_LINK.findall(line):
                    if url_name in labels and translation.gettext(msgid) != str(labels[url_name]):
                        differing.append((template.name, url_name, translation.gettext(msgid), str(labels[url_name])))
    assert differing == []
