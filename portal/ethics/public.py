"""The committees' public pages (no sign-in): rules, member list and the yearly review summary.

The guideline obliges the committee's establisher to publish its rules, its member list (name,
affiliation, category, sex) and, at least once a year, a summary of its reviews (REGULATION.md (c)).
The secretariat is staff, not a member, so it is not listed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from django.db.models import Case, Count, IntegerField, OuterRef, QuerySet, Subquery, Value, When
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.utils.translation import get_language

from portal.ethics.models import (
    CommitteeMembership,
    Decision,
    EthicsCommittee,
    NoncomplianceReport,
    ProtocolItem,
    Review,
)

FIRST_YEAR = 2000


def _listed_members(committee: EthicsCommittee) -> QuerySet[CommitteeMembership]:
    return (
        committee.memberships.filter(
            active=True, role__in=[CommitteeMembership.Role.CHAIR, CommitteeMembership.Role.MEMBER]
        )
        .select_related("user")
        .annotate(
            chair_first=Case(
                When(role=CommitteeMembership.Role.CHAIR, then=Value(0)),
                default=Value(1),
                output_field=IntegerField(),
            )
        )
        .order_by("chair_first", "user__full_name_kana", "user__full_name", "id")
    )


def _decisions(committee: EthicsCommittee, year: int) -> QuerySet[Decision]:
    return Decision.objects.filter(review__version__protocol__committee=committee, decided_at__year=year)


def _years(committee: EthicsCommittee) -> list[int]:
    moments = Decision.objects.filter(review__version__protocol__committee=committee).datetimes(
        "decided_at", "year", order="DESC", tzinfo=timezone.get_current_timezone()
    )
    return [moment.year for moment in moments]


def committee_list(request: HttpRequest) -> HttpResponse:
    committees = EthicsCommittee.objects.select_related("institution").order_by("id")
    return render(request, "ethics/public/committee_list.html", {"committees": committees})


def committee_detail(request: HttpRequest, slug: str) -> HttpResponse:
    committee = get_object_or_404(EthicsCommittee.objects.select_related("institution"), slug=slug)
    english = get_language() == "en"
    rules = committee.rules_en if english and committee.rules_en else committee.rules_ja
    return render(request, "ethics/public/committee_detail.html", {
        "committee": committee,
        "rules": rules,
        "rules_in_japanese_only": english and not committee.rules_en and bool(committee.rules_ja),
        "members": list(_listed_members(committee)),
        "years": _years(committee),
    })


@dataclass(frozen=True)
class CountRow:
    value: str
    label: str
    count: int


def committee_summary(request: HttpRequest, slug: str, year: int) -> HttpResponse:
    if not FIRST_YEAR <= year <= timezone.localdate().year:
        raise Http404
    committee = get_object_or_404(EthicsCommittee.objects.select_related("institution"), slug=slug)
    decisions = _decisions(committee, year)
    pairs = decisions.values_list("review__type", "outcome").annotate(n=Count("id")).order_by()
    by_type: Counter[str] = Counter()
    by_outcome: Counter[str] = Counter()
    for review_type, outcome, n in pairs:
        by_type[review_type] += n
        by_outcome[outcome] += n
    # Reports of serious non-compliance are reviewed outside a version's review (NoncomplianceReport).
    by_type[Review.Type.SERIOUS_NONCOMPLIANCE] += NoncomplianceReport.objects.filter(
        protocol__committee=committee, opinion_at__year=year
    ).count()
    title = ProtocolItem.objects.filter(version=OuterRef("review__version"), key="title").values("body")[:1]
    approved = (
        decisions.filter(
            outcome__in=[Decision.Outcome.APPROVED, Decision.Outcome.CONDITIONS],
            review__version__head_decision__permitted=True,
        )
        .annotate(title=Subquery(title))
        .values_list("review__version__protocol__number", "title")
        .order_by("review__version__protocol__number", "review__version__number")
    )
    return render(request, "ethics/public/committee_summary.html", {
        "committee": committee,
        "year": year,
        "total": sum(by_type.values()),
        "by_type": [CountRow(value, str(label), by_type[value]) for value, label in Review.Type.choices],
        "by_outcome": [CountRow(value, str(label), by_outcome[value]) for value, label in Decision.Outcome.choices],
        # One row per study: an amendment approved in the same year keeps its latest title.
        "approved": [{"number": number, "title": title} for number, title in dict(approved).items()],
    })
