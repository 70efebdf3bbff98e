"""API parity: every action a person can take on the ethics, access and opt-out pages has an endpoint
under /api/v1/, and the schema of those endpoints builds without a warning."""

from __future__ import annotations

import inspect
from collections.abc import Iterator

from django.urls import URLPattern, URLResolver, get_resolver, reverse

# The page that takes a POST → the API route that does the same through the same service.
PARITY = {
    # Ethics review (portal/ethics/urls.py → portal/ethics/api_urls.py)
    "ethics:protocol_create": "api-ethics-protocol-list",
    "ethics:protocol_edit": "api-ethics-protocol-draft",
    "ethics:attachment_upload": "api-ethics-attachment-add",
    "ethics:protocol_submit": "api-ethics-protocol-submit",
    "ethics:protocol_revise": "api-ethics-protocol-revise",
    "ethics:protocol_withdraw": "api-ethics-protocol-withdraw",
    "ethics:conditions_answer": "api-ethics-conditions-answer",
    "ethics:conditions_verify": "api-ethics-conditions-verify",
    "ethics:amendment_start": "api-ethics-amendment-start",
    "ethics:completion_report": "api-ethics-completion-report",
    "ethics:periodic_report": "api-ethics-periodic-report",
    "ethics:periodic_report_acknowledge": "api-ethics-periodic-report-acknowledge",
    "ethics:noncompliance_report": "api-ethics-noncompliance-report",
    "ethics:noncompliance_opinion": "api-ethics-noncompliance-opinion",
    "ethics:protocol_suspend": "api-ethics-protocol-suspend",
    "ethics:protocol_resume": "api-ethics-protocol-resume",
    "ethics:protocol_discontinue": "api-ethics-protocol-discontinue",
    "ethics:protocol_return": "api-ethics-protocol-return",
    "ethics:minor_amendment_acknowledge": "api-ethics-minor-amendment-acknowledge",
    "ethics:head_decide": "api-ethics-head-decide",
    "ethics:review_open": "api-ethics-review-open",
    "ethics:review_comment": "api-ethics-review-comment",
    "ethics:review_vote": "api-ethics-review-vote",
    "ethics:review_attendance": "api-ethics-review-attendance",
    "ethics:review_decision": "api-ethics-review-decision",
    "ethics:review_conflict": "api-ethics-review-conflict",
    "ethics:review_explanation": "api-ethics-review-explanation",
    "ethics:review_notified_to_head": "api-ethics-review-notified-to-head",
    # Data access (portal/access/*_urls.py → portal/access/*api_urls.py)
    "access:request_create": "api-access-request-list",
    "access:request_edit": "api-access-request-detail",
    "access:request_submit": "api-access-request-submit",
    "access:request_withdraw": "api-access-request-withdraw",
    "access:request_comment": "api-access-request-comment",
    "access:request_sign": "api-access-request-sign",
    "access:steward_screen": "api-access-request-screen",
    "access:steward_return": "api-access-request-return",
    "access:steward_revoke": "api-access-request-revoke",
    "access:steward_countersign": "api-access-request-countersign",
    "access:committee_vote": "api-access-request-vote",
    "access:committee_decide": "api-access-request-decide",
    "access:amendment_create": "api-access-amendment-create",
    "access:amendment_decide": "api-access-amendment-decide",
    "access:grant_revoke": "api-access-grant-revoke",
    "access:grant_extend": "api-access-grant-extend",
    "access:grant_training_renew": "api-access-grant-training",
    "access:report_submit": "api-access-report-submit",
    "access:report_confirm": "api-access-report-confirm",
    "access:report_accept": "api-access-report-accept",
    "access:report_stop": "api-access-report-stop",
    # Opt-out (portal/optout/urls.py → portal/optout/api_urls.py)
    "optout:notice_create": "api-optout-notice-create",
    "optout:notice_edit": "api-optout-notice-draft",
    "optout:notice_publish": "api-optout-notice-publish",
    "optout:notice_new_version": "api-optout-notice-new-version",
    "optout:notice_withdraw": "api-optout-notice-withdraw",
    "optout:request_create": "api-optout-request-record",
    "optout:request_notify": "api-optout-request-notify",
    "optout:request_close": "api-optout-request-close",
    "optout:deletion_confirm": "api-optout-deletion-confirm",
    # Hosted AIs (portal/ai/urls.py → portal/ai/api_urls.py)
    "ai:run": "api-ai-job-list",
    "ai:job_images_delete": "api-ai-job-images-delete",
    "ai:access_request": "api-ai-access-request-create",
    "ai:request_decide": "api-ai-access-request-decision",
    "ai:request_withdraw": "api-ai-access-request-withdraw",
    "ai:request_revoke": "api-ai-access-request-revoke",
    "ai:version_upload": "api-ai-version-create",
    "ai:version_publish": "api-ai-version-publish",
    "ai:version_retire": "api-ai-version-retire",
    # Dataset management (portal/datasets/urls.py → portal/datasets/api_urls.py)
    "datasets:create": "api-dataset-create",
    "datasets:edit": "api-dataset-edit",
    "datasets:publish": "api-dataset-publish",
    "datasets:withdraw": "api-dataset-withdraw",
    "datasets:release_withdraw": "api-release-withdraw",
    # Anonymisation jobs (portal/deid/urls.py → portal/deid/api_urls.py)
    "deid:cancel": "api-deid-job-cancel",
    "deid:resume": "api-deid-job-resume",
    "deid:release": "api-deid-job-release",
    "deid:file_review": "api-deid-file-review",
    # Linkage approvals (the operator's pages)
    "linkage:approval_grant": "api-linkage-approval-grant",
    "linkage:approval_revoke": "api-linkage-approval-revoke",
    # In-portal notifications
    "notifications:mark_all_read": "api-notification-read-all",
}
# The review workflows must have an endpoint for every page action (issue 12, item 16).
REVIEW_APPS = ("ethics", "access", "optout")
# Pages of other areas still without an endpoint: the list may only shrink. Remove an entry when
# its endpoint is added (and add the pair to PARITY); a new page action fails the test at once.
PAGE_ONLY = {
    "accounts:token_create", "accounts:token_revoke",  # tokens are made by a person signed in
    "ai:model_create", "ai:model_edit",
    "datasets:release_upload",  # a folder of images and its manifest: the page's upload
    "deid:create",  # an upload of a folder of images: the page's job
    "agreements:template_create", "agreements:version_new", "agreements:version_edit",
    "agreements:version_publish",
}
# Not the portal's own pages: Django's admin and language switch.
NOT_PORTAL = {"admin", None}
# What in a view's source shows that it takes a POST (decorators are part of the source).
POST_MARKS = ("require_POST", "request.POST", 'request.method == "POST"', "require_http_methods")


def _patterns(patterns: list, namespace: str | None = None) -> Iterator[tuple[str | None, URLPattern]]:
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            yield from _patterns(pattern.url_patterns, pattern.namespace or namespace)
        elif isinstance(pattern, URLPattern):
            yield namespace, pattern


def _post_pages() -> set[str]:
    pages = set()
    for namespace, pattern in _patterns(get_resolver().url_patterns):
        if namespace in NOT_PORTAL:
            continue
        source = inspect.getsource(inspect.unwrap(pattern.callback))
        if any(mark in source for mark in POST_MARKS):
            pages.add(f"{namespace}:{pattern.name}")
    return pages


def _api_names() -> set[str]:
    return {name for name in get_resolver().reverse_dict if isinstance(name, str) and name.startswith("api-")}


def test_api_parity_every_post_page_of_the_review_apps_has_an_api_route():
    pages = {page for page in _post_pages() if page.split(":")[0] in REVIEW_APPS}

    assert len(pages) >= 50  # the detection finds the pages at all
    assert sorted(pages - set(PARITY)) == []


def test_api_parity_every_other_post_page_is_mapped_or_a_known_gap():
    pages = _post_pages()

    assert sorted(pages - set(PARITY) - PAGE_ONLY) == []  # a new page action needs its endpoint
    assert sorted(set(PARITY) - pages) == []  # a page that went away takes its entry with it
    assert sorted(PAGE_ONLY - pages) == []
    assert sorted(PAGE_ONLY & set(PARITY)) == []  # an endpoint was added: drop it from PAGE_ONLY


def test_api_parity_every_mapped_api_route_exists():
    missing = sorted({api for api in PARITY.values()} - _api_names())

    assert missing == []


def test_api_parity_routes_are_under_api_v1():
    assert reverse("api-ethics-review-vote", args=[1]) == "/api/v1/ethics/protocols/1/review/vote/"
    assert reverse("api-access-request-countersign", args=[1, 2]) \
        == "/api/v1/access/requests/1/societies/2/countersign/"
    assert reverse("api-optout-request-record") == "/api/v1/optout/requests/"


def _schema_of(*modules: str) -> dict:
    from django.urls import include, path
    from drf_spectacular.drainage import GENERATOR_STATS
    from drf_spectacular.generators import SchemaGenerator

    GENERATOR_STATS.reset()
    generator = SchemaGenerator(patterns=[path("api/v1/", include(module)) for module in modules])
    schema = generator.get_schema(request=None, public=True)
    assert not GENERATOR_STATS, (dict(GENERATOR_STATS._warn_cache), dict(GENERATOR_STATS._error_cache))
    return schema


def test_api_schema_of_review_endpoints_has_no_warnings():
    schema = _schema_of("portal.ethics.api_urls", "portal.access.api_urls", "portal.optout.api_urls")

    paths = schema["paths"]
    assert "post" in paths["/api/v1/ethics/protocols/{id}/review/vote/"]
    assert "post" in paths["/api/v1/access/requests/{id}/societies/{society_id}/countersign/"]
    assert "patch" in paths["/api/v1/access/requests/{id}/"]
    assert "post" in paths["/api/v1/optout/requests/"]
    vote = paths["/api/v1/ethics/protocols/{id}/review/vote/"]["post"]
    assert vote["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/EthicsVote"}


def test_api_schema_whole_has_no_warnings():
    schema = _schema_of("portal.api_urls")

    assert "/api/v1/ethics/protocols/{id}/permission/" in schema["paths"]
