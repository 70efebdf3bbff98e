"""The public catalogue (no sign-in): search and filters, dataset pages, release pages, statistics.

What the public sees of a release is its counts, notes and manifest checksum; never file paths,
pseudonymous subject IDs or download links. Reads live in ``catalogue_selectors`` and
``statistics``; every page runs a fixed number of queries.
"""

from __future__ import annotations

from django import forms
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import urlencode
from django.utils.translation import gettext_lazy as _

from portal.core.vocabulary import Modality
from portal.datasets.catalogue_selectors import (
    CatalogueFilters,
    catalogue_dataset,
    catalogue_release,
    catalogue_search,
    catalogue_societies,
    release_breakdown,
)
from portal.datasets.models import AnnotationGranularity, DatasetStatus
from portal.datasets.statistics import cached_catalogue_statistics, statistics_charts, year_label
from portal.lib import hooks

PAGE_SIZE = 20


class CatalogueFilterForm(forms.Form):
    q = forms.CharField(label=_("Search"), required=False, max_length=200, widget=forms.SearchInput,
                        help_text=_("Title, description, body part or disease area."))
    society = forms.ChoiceField(label=_("Society"), required=False)
    modality = forms.ChoiceField(
        label=_("Modality"), required=False, choices=[("", _("Any")), *list(Modality.choices)]
    )
    granularity = forms.ChoiceField(
        label=_("Annotation granularity"), required=False,
        choices=[("", _("Any")), *list(AnnotationGranularity.choices)],
    )
    commercial = forms.BooleanField(label=_("Commercial use allowed"), required=False)

    def __init__(self, *args, societies=(), **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.fields["society"].choices = [("", _("Any"))] + [(s.slug, s.name) for s in societies]

    def filters(self) -> CatalogueFilters:
        """The valid part of the query (an invalid field is ignored, and its error shown)."""
        data = self.cleaned_data if hasattr(self, "cleaned_data") else {}
        return CatalogueFilters(
            q=data.get("q") or "",
            society=data.get("society") or "",
            modality=data.get("modality") or "",
            granularity=data.get("granularity") or "",
            commercial=bool(data.get("commercial")),
        )


def _filter_query(filters: CatalogueFilters) -> dict[str, str]:
    query = {
        "q": filters.q, "society": filters.society, "modality": filters.modality,
        "granularity": filters.granularity, "commercial": "on" if filters.commercial else "",
    }
    return {name: value for name, value in query.items() if value}


def catalogue_list(request: HttpRequest) -> HttpResponse:
    form = CatalogueFilterForm(request.GET or None, societies=list(catalogue_societies()))
    form.is_valid()
    filters = form.filters()
    page = Paginator(catalogue_search(filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = _filter_query(filters)
    return render(request, "datasets/catalogue_list.html", {
        "form": form,
        "filters": filters,
        "page": page,
        "previous_query": urlencode(query | {"page": page.previous_page_number()}) if page.has_previous() else "",
        "next_query": urlencode(query | {"page": page.next_page_number()}) if page.has_next() else "",
    })


def catalogue_detail(request: HttpRequest, slug: str) -> HttpResponse:
    dataset = catalogue_dataset(slug)
    if dataset.status == DatasetStatus.WITHDRAWN:
        # A withdrawn dataset says so (links to it may live on) but shows nothing else: 410 Gone.
        return render(request, "datasets/catalogue_withdrawn.html", {"dataset": dataset}, status=410)
    # The published opt-out notices covering it, with their public pages (portal.optout).
    notices = hooks.joined("dataset_public_notices", dataset=dataset)
    return render(request, "datasets/catalogue_detail.html", {
        "dataset": dataset,
        "releases": list(dataset.releases.all()),
        "notices": notices,
    })


def catalogue_release_detail(request: HttpRequest, slug: str, version: int) -> HttpResponse:
    release = catalogue_release(slug, version)
    labels = dict(Modality.choices)
    rows = [
        {"modality": labels.get(row.modality, row.modality), "year": year_label(row.year),
         "images": row.images, "cases": row.cases}
        for row in release_breakdown(release)
    ]
    return render(request, "datasets/catalogue_release.html", {
        "release": release,
        "dataset": release.dataset,
        "rows": rows,
        # The anonymisation job's report (portal.deid), when the release was built by one.
        "deid_report": hooks.first("release_build_report", release=release),
    })


def catalogue_statistics_page(request: HttpRequest) -> HttpResponse:
    stats = cached_catalogue_statistics()
    return render(request, "datasets/statistics.html", {
        "stats": stats,
        "charts": statistics_charts(stats),
    })
