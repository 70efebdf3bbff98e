"""Every kind of PDF the portal makes prints its Japanese in the packaged Noto Sans JP, even where
fontconfig knows no Japanese font (a bare machine has only DejaVu: the text layer would still be
there, but every glyph an empty box).

The documents are built in this process through the real services and views, which give their
HTML to ``portal.lib.pdf.html_to_pdf``; that HTML is then laid out in one subprocess whose
fontconfig sees DejaVu only, and the PDFs are read back here.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from django.conf import settings as django_settings
from django.urls import reverse
from fontTools.ttLib import TTFont
from pypdf import PdfReader
from pypdf.generic import ByteStringObject, ContentStream, TextStringObject

from portal.access.provision import provision_pdf
from portal.access.services.records import provision_record_create
from portal.agreements.models import AgreementTemplate, SignedAgreement
from portal.ethics import services as ethics_services
from portal.ethics.documents import decision_notice_issue, permission_notice_issue
from portal.lib import pdf as pdf_module
from portal.lib.pdf import RemoteAssetRefused, html_to_pdf, pdf_font_url
from tests.access.test_provision import setup  # noqa: F401  (fixture)
from tests.agreements.test_services import _published, _sign, request_for  # noqa: F401
from tests.ethics.test_documents import _decided, setting  # noqa: F401  (fixture)
from tests.optout.test_public import TITLE as POSTER_TITLE
from tests.optout.test_public import notice  # noqa: F401  (fixture)

pytestmark = pytest.mark.django_db

DEJAVU = Path("/usr/share/fonts/truetype/dejavu")

# Lays out each HTML file named on the command line as the PDF beside it, through the portal's
# own helper (same fetcher, same packaged font).
RENDER = """
import sys
from pathlib import Path
from portal.lib.pdf import html_to_pdf
for name in sys.argv[1:]:
    source = Path(name)
    source.with_suffix(".pdf").write_bytes(html_to_pdf(source.read_text(encoding="utf-8")))
"""


def _bare_fontconfig(root: Path) -> dict[str, str]:
    """Environment for a process whose fontconfig sees DejaVu (if installed) and nothing else."""
    fonts = root / "fonts"
    fonts.mkdir(parents=True)
    if DEJAVU.is_dir():
        for font in DEJAVU.glob("DejaVuSans*.ttf"):
            shutil.copy(font, fonts / font.name)
    conf = root / "fonts.conf"
    conf.write_text(
        '<?xml version="1.0"?>\n<!DOCTYPE fontconfig SYSTEM "urn:fontconfig:fonts.dtd">\n'
        f"<fontconfig><dir>{fonts}</dir><cachedir>{root / 'cache'}</cachedir></fontconfig>\n",
        encoding="utf-8",
    )
    return {"PATH": "/usr/bin:/bin", "HOME": str(root), "FONTCONFIG_FILE": str(conf),
            "XDG_CACHE_HOME": str(root / "cache"), "PYTHONPATH": str(django_settings.BASE_DIR)}


def _codes(operand: object) -> list[int]:
    """Two-byte glyph codes of one Tj/TJ string (WeasyPrint writes Identity-H CID fonts)."""
    raw = operand.get_original_bytes() if isinstance(operand, TextStringObject) else bytes(operand)  # type: ignore[call-overload]
    return [int.from_bytes(raw[i:i + 2], "big") for i in range(0, len(raw), 2)]


def _fonts_and_codes(pdf: bytes) -> tuple[str, list[TTFont], list[int]]:
    """The text, every embedded font program, and every glyph code drawn."""
    reader = PdfReader(io.BytesIO(pdf))
    text, fonts, codes = "", [], []
    for page in reader.pages:
        text += page.extract_text()
        for font in page["/Resources"]["/Font"].values():
            descendant = font.get_object()["/DescendantFonts"][0].get_object()
            descriptor = descendant["/FontDescriptor"].get_object()
            program = next(descriptor[key] for key in ("/FontFile3", "/FontFile2", "/FontFile") if key in descriptor)
            fonts.append(TTFont(io.BytesIO(program.get_object().get_data())))
        for operands, operator in ContentStream(page.get_contents(), reader).operations:
            if operator == b"Tj":
                codes += _codes(operands[0])
            elif operator == b"TJ":
                for item in operands[0]:
                    if isinstance(item, (ByteStringObject, TextStringObject)):
                        codes += _codes(item)
    return text, fonts, codes


@pytest.fixture
def pages(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record the HTML of every PDF rendered; return a stand-in PDF (laid out later, elsewhere).
    Asked for first, so the other fixtures' PDFs are captured too instead of laid out here."""
    pages: list[str] = []

    def record(html: str) -> bytes:
        pages.append(html)
        return b"%PDF-1.7\n%stand-in\n"

    monkeypatch.setattr(pdf_module, "html_to_pdf", record)
    return pages


def test_every_pdf_kind_embeds_noto_sans_jp_covering_its_japanese_without_system_fonts(
    pages, tmp_path, client, setting, setup, notice, request_for, society, society_admin,  # noqa: F811
    applicant, django_capture_on_commit_callbacks,
):
    protocol, decision = _decided(setting)
    decision_notice_issue(decision=decision, by=None)
    head_decision = ethics_services.head_decide(protocol=protocol, permitted=True, by=setting["head"],
                                                conditions="年次で進捗を報告すること")
    permission_notice_issue(head_decision=head_decision, by=None)
    if not AgreementTemplate.objects.filter(society=society).exists():  # the granted request's fixture may have one
        _published(society, society_admin)
    with django_capture_on_commit_callbacks(execute=True):
        _sign(request_for(), society, applicant)
    assert SignedAgreement.objects.filter(signatory=applicant).count() == 1
    assert client.get(reverse("optout_public:poster", args=[notice.reference])).status_code == 200
    provision_pdf(provision_record_create(grant=setup["grant"]))
    for number, html in enumerate(pages):
        (tmp_path / f"{number:02d}.html").write_text(html, encoding="utf-8")
    sources = sorted(str(path) for path in tmp_path.glob("*.html"))
    env = _bare_fontconfig(tmp_path / "fc")

    fc_list = shutil.which("fc-list")
    if fc_list:  # the premise: this fontconfig knows no Japanese font
        seen = subprocess.run([fc_list, ":lang=ja"], env=env, capture_output=True, text=True, check=True)
        assert seen.stdout == ""
    done = subprocess.run([sys.executable, "-c", RENDER, *sources], env=env, capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stderr

    # Each kind is known by its heading (the fixtures may render some kinds more than once).
    headings = {"decision notice": "審査結果通知書", "permission notice": "許可通知書",
                "agreement": "データ利用契約書", "opt-out poster": POSTER_TITLE,
                "provision record": "試料・情報の提供に関する記録"}
    seen_kinds = set()
    for source in sources:
        text, fonts, codes = _fonts_and_codes(Path(source).with_suffix(".pdf").read_bytes())
        flat = text.replace(" ", "").replace("\n", "")
        seen_kinds |= {kind for kind, heading in headings.items() if heading in flat}
        # Only the packaged face is embedded: no fallback font drew any character.
        assert {font["name"].getDebugName(6) for font in fonts} == {"NotoSansJP-Regular"}, source
        # Every character of the text has its glyph in that font, and none was drawn as .notdef.
        covered = {code for font in fonts for code in font.getBestCmap()}
        missing = {char for char in text if not char.isspace() and ord(char) not in covered}
        assert missing == set(), source
        assert codes and 0 not in codes, source
        assert len([char for char in text if "\u3040" <= char <= "\u9fff"]) > 20, source
    assert seen_kinds == set(headings)

def test_render_pdf_fetches_the_packaged_font_but_no_other_file():
    assert pdf_font_url().startswith("file://")
    assert pdf_font_url().endswith("/pylopdf_fonts_jp/NotoSansJP-Regular.otf")

    with pytest.raises(RemoteAssetRefused):
        html_to_pdf('<link rel="stylesheet" href="file:///etc/hostname"><p>x</p>')
