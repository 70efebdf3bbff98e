"""Every input a person can fill in has a label that names it (a <label for>, or aria-label)."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from django.urls import reverse

from tests.access.test_requests_services import draft, make_world
from tests.factories.datasets import DatasetFactory

pytestmark = pytest.mark.django_db

UNLABELLED_TYPES = {"hidden", "submit", "button", "reset", "image"}


class _Inputs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.inputs: list[dict[str, str]] = []
        self.label_for: set[str] = set()
        self.label_depth = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        attributes = {name: value or "" for name, value in attrs}
        if tag == "label":
            self.label_depth += 1
            if attributes.get("for"):
                self.label_for.add(attributes["for"])
        elif tag in {"input", "select", "textarea"} and attributes.get("type", "") not in UNLABELLED_TYPES:
            self.inputs.append(attributes | {"_wrapped": "1" if self.label_depth else ""})

    def handle_endtag(self, tag: str) -> None:
        if tag == "label" and self.label_depth:
            self.label_depth -= 1


def unlabelled_inputs(html: str) -> list[str]:
    """The names of the inputs of ``html`` that no label names."""
    parser = _Inputs()
    parser.feed(html)
    return [
        attributes.get("name", "?") for attributes in parser.inputs
        if not (attributes["_wrapped"] or attributes.get("aria-label") or attributes.get("aria-labelledby")
                or attributes.get("id", "") in parser.label_for)
    ]


def test_unlabelled_inputs_finds_an_input_in_a_table_cell():
    html = '<table><tr><td><input name="a" id="a"></td><td><label for="b">B</label><input name="b" id="b"></td></tr></table>'

    assert unlabelled_inputs(html) == ["a"]


def test_application_form_labels_every_input_of_its_tables(client):
    world = make_world()
    request = draft(world)
    client.force_login(world.applicant)

    html = client.get(reverse("access:request_edit", args=[request.pk])).content.decode()

    assert 'name="user_0_email"' in html
    assert unlabelled_inputs(html) == []


def test_application_form_names_each_users_row_in_japanese(client):
    world = make_world()
    request = draft(world)
    client.force_login(world.applicant)

    html = client.get(reverse("access:request_edit", args=[request.pk])).content.decode()

    assert '<label class="visually-hidden" for="id_user_1_email">電子メール（利用者2）</label>' in html


@pytest.mark.parametrize("url_name", ["datasets:create", "optout:notice_create", "optout:request_create"])
def test_society_forms_label_every_input(client, society, society_admin, url_name):
    client.force_login(society_admin)

    html = client.get(reverse(url_name)).content.decode()

    assert unlabelled_inputs(html) == []


def test_release_upload_form_labels_every_input(client, society, society_admin):
    dataset = DatasetFactory(society=society)
    client.force_login(society_admin)

    html = client.get(reverse("datasets:release_upload", args=[dataset.pk])).content.decode()

    assert unlabelled_inputs(html) == []
