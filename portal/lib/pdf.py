"""PDFs from Django templates under ``templates/pdf/``, rendered by WeasyPrint without the network.

Fonts come from the system (fontconfig): the templates ask for IPAexGothic or Noto Sans CJK JP, so
Japanese text is embedded as real text that can be searched and extracted. Nothing is fetched
except inline ``data:`` URLs: a template that links a remote stylesheet or image fails loudly
instead of waiting on the network or silently dropping the asset.
"""

from __future__ import annotations

from typing import Any

from django.template.loader import render_to_string


class RemoteAssetRefused(Exception):
    """A PDF template tried to load something from outside the template."""


def render_pdf(template_name: str, context: dict[str, Any]) -> bytes:
    """Render ``pdf/<template_name>`` (or a path already starting with ``pdf/``) to PDF bytes."""
    # Imported here: WeasyPrint loads Pango and the fonts when imported.
    from weasyprint import HTML
    from weasyprint.urls import FatalURLFetchingError, URLFetcher

    class InlineOnlyFetcher(URLFetcher):
        def fetch(self, url: str, headers: Any = None) -> Any:
            if url.startswith("data:"):
                return super().fetch(url, headers)
            raise RemoteAssetRefused(f"PDF templates may not load external resources ({url}).")

    if not template_name.startswith("pdf/"):
        template_name = f"pdf/{template_name}"
    html = render_to_string(template_name, context)
    fetcher = InlineOnlyFetcher(fail_on_errors=True)
    try:
        pdf = HTML(string=html, base_url=None, url_fetcher=fetcher).write_pdf()
    except FatalURLFetchingError as error:
        raise RemoteAssetRefused(str(error)) from error
    assert pdf is not None  # write_pdf returns the bytes when given no target
    return pdf
