"""PDFs from Django templates under ``templates/pdf/``, rendered by WeasyPrint without the network.

The Japanese font comes with the Python install: Noto Sans JP from the ``pylopdf-fonts-jp`` wheel
(SIL Open Font License 1.1), loaded by ``@font-face`` from the packaged file and listed first, so
a PDF is right on a machine with no Japanese system font (a bare machine has only DejaVu, and its
Japanese would print as empty boxes although the text layer is there). ``render_pdf`` gives every
template the font's address as ``pdf_font_url``; ``pdf/_notice_base.html`` declares the face.
The system fonts stay as fallbacks after it.

Nothing is fetched except that font file and inline ``data:`` URLs: a template that links a remote
stylesheet or image fails loudly instead of waiting on the network or silently dropping the asset.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.template.loader import render_to_string
from django.utils import translation

# The family name the templates ask for first; the face is declared from the packaged file.
PDF_FONT_FAMILY = "Noto Sans JP"


class RemoteAssetRefused(Exception):
    """A PDF template tried to load something from outside the template."""


@cache
def pdf_font_url() -> str:
    """``file://`` address of the packaged Noto Sans JP (a dependency, so always installed)."""
    import pylopdf_fonts_jp

    return pylopdf_fonts_jp.sans_path().resolve().as_uri()


def render_pdf(template_name: str, context: dict[str, Any]) -> bytes:
    """Render ``pdf/<template_name>`` (or a path already starting with ``pdf/``) to PDF bytes."""
    return html_to_pdf(render_pdf_html(template_name, context))


def render_pdf_html(template_name: str, context: dict[str, Any]) -> str:
    """The HTML a PDF is made from, with the packaged font given to the template.

    In Japanese whatever the reader's language: the PDFs are official Japanese documents, whose
    labels are the catalogue's (the same words as the pages)."""
    if not template_name.startswith("pdf/"):
        template_name = f"pdf/{template_name}"
    with translation.override("ja"):
        return render_to_string(template_name, {**context, "pdf_font_url": pdf_font_url(),
                                                "pdf_font_family": PDF_FONT_FAMILY})


def html_to_pdf(html: str) -> bytes:
    """Lay out ``html`` as PDF, fetching nothing but ``data:`` URLs and the packaged font."""
    # Imported here: WeasyPrint loads Pango and the fonts when imported.
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    font_url = pdf_font_url()

    class InlineOnlyFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith("data:") or url == font_url:
                return super().fetch(url, headers)
            raise RemoteAssetRefused(f"PDF templates may not load external resources ({url}).")

    fetcher = InlineOnlyFetcher(fail_on_errors=True)
    try:
        pdf = HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    except FatalURLFetchingError as error:
        raise RemoteAssetRefused(str(error)) from error
    assert pdf is not None  # write_pdf returns the bytes when given no target
    return pdf
