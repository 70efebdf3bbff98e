"""De-identifying one DICOM file by PS3.15 Annex E (Table E.1-1, loaded by ``annex_e``).

:func:`deidentify_dicom` reads the header WITHOUT the pixel data (``stop_before_pixels``), applies
the profile to every attribute, inside sequences at any depth, writes the new header, then copies
the pixel data element from the source to the destination in chunks of 1 MiB (masking burned-in
text on the way when a rule asks for it). Memory is therefore flat in the size of the file; only a
deflated transfer syntax (whole dataset compressed) is read whole.

What each action does here (after ``annex_e.resolve``):

* X: removed. Z: kept, empty (a sequence: no items). K: kept.
* D: a dummy of the attribute's VR — "ANONYMIZED" for text and names, 19000101 / 19000101000000 /
  000000 for DA / DT / TM, 0 for numbers, zero bytes for OB/OW/UN, a key-derived UID for UI; a
  sequence keeps its items, which are de-identified by the same table.
* U: every UID value replaced by ``keys.uid(original)``: the same original gives the same new UID
  in every file and job (SOPInstanceUID and MediaStorageSOPInstanceUID, references inside
  sequences...). Under the Retain UIDs option (UID) U becomes K.
* C (clean): under LMD, dates (DA, and the date part of DT) are shifted by the subject's offset
  ``keys.date_offset_days(pseudonym)``, times (TM) kept; under the other options (DESC, PAT, DEV)
  text is replaced by an empty value — or by the dummy when the Basic action was a D (the attribute
  may be Type 1) — which is the simplest cleaning known to leave nothing identifying; sequences keep
  their items, de-identified.
* Every sequence kept (K, C, D, U, or not in the table) is walked: its items get the same table.
* PatientID becomes the society-common pseudonym ``keys.pseudonym(institution_code, PatientID)``,
  PatientName the same pseudonym.
* Private attributes (odd groups, creators included) are removed, unless SP is chosen and the
  attribute is in ``data/safe_private.json`` (empty for now). Curves (groups 50xx) are removed;
  overlays (groups 60xx): Overlay Data and Overlay Comments by the table, and the rest of an
  overlay group with them, since an overlay plane without its data is meaningless.
* Attributes not in the table (Modality, Rows, code values...) are kept, as the Basic Profile
  allows; command elements (group 0000) do not belong in a file and are removed.
* Group lengths (gggg,0000) are dropped (pydicom recomputes the meta group's); elements after the
  pixel data (trailing padding, digital signatures) are dropped; the 128-byte preamble is zeroed;
  the meta group's Source/Sending/Receiving AE titles and private information are removed.
* Stamped: PatientIdentityRemoved YES, DeidentificationMethod (profile, table edition, options),
  DeidentificationMethodCodeSequence (CID 7050, scheme DCM), LongitudinalTemporalInformationModified
  (MODIFIED with LMD, UNMODIFIED with LFD, REMOVED otherwise).

Burned-in text (``pixels``): a rule matching the modality/manufacturer masks its regions in every
frame of uncompressed data (BurnedInAnnotation then NO); an object whose BurnedInAnnotation is not
NO (YES, or missing for the modalities the rules list) and that no rule covers, or that needs
masking but is compressed, is held back: ``report.held_back`` with the reason, and NOTHING is
written to ``dst`` (reviewers look at the source).

``dst`` given as a path is written to a partial file beside it and renamed into place: a repeated
run overwrites, a failed one leaves nothing. Errors (not DICOM, truncated, malformed, no PatientID,
no institution code) raise ``DeidError`` with an English reason, for the caller to translate.
"""

from __future__ import annotations

import contextlib
import os
import struct
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any, BinaryIO

import pydicom
from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomFileLike
from pydicom.filewriter import write_dataset, write_file_meta_info
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.uid import DeflatedExplicitVRLittleEndian

from . import annex_e, pixels
from .keys import Keys
from .report import DeidError, FileReport

MODALITIES = {
    "CT": "ct",
    "MR": "mr",
    "CR": "xray",
    "DX": "xray",
    "US": "ultrasound",
    "ES": "endoscopy",
    "OP": "fundus",
    "SM": "pathology_wsi",
    "XC": "dermatology",
}
DUMMY_TEXT = "ANONYMIZED"
_TEXT_VRS = frozenset({"AE", "CS", "LO", "LT", "SH", "ST", "UC", "UT", "PN", "UR", "AS"})
_DUMMIES: dict[str, Any] = {
    "AE": DUMMY_TEXT, "CS": DUMMY_TEXT, "LO": DUMMY_TEXT, "LT": DUMMY_TEXT, "SH": DUMMY_TEXT,
    "ST": DUMMY_TEXT, "UC": DUMMY_TEXT, "UT": DUMMY_TEXT, "PN": DUMMY_TEXT, "UR": "",
    "AS": "000D", "DA": "19000101", "DT": "19000101000000", "TM": "000000", "DS": "0", "IS": "0",
    "US": 0, "SS": 0, "UL": 0, "SL": 0, "UV": 0, "SV": 0, "FL": 0.0, "FD": 0.0, "AT": 0,
    "OB": b"\0\0", "OW": b"\0\0", "OD": b"\0" * 8, "OF": b"\0" * 4, "OL": b"\0" * 4,
    "OV": b"\0" * 8, "UN": b"\0\0",
}
_PIXEL_TAGS = frozenset({0x7FE00010, 0x7FE00008, 0x7FE00009})
_LONG_VRS = frozenset({b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"UC", b"UN", b"UR", b"UT", b"SV", b"UV"})
_META_REMOVED = (0x00020016, 0x00020017, 0x00020018, 0x00020100, 0x00020102)
PATIENT_ID, PATIENT_NAME = 0x00100020, 0x00100010


@dataclass(frozen=True)
class Profile:
    """The Basic Profile plus the chosen options (``annex_e.OPTIONS``) and the institution code."""

    options: frozenset[str] = field(default_factory=frozenset)
    institution_code: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", annex_e.validate_options(frozenset(self.options)))


@dataclass
class _Context:
    profile: Profile
    keys: Keys
    report: FileReport
    exact: dict[int, str]
    patterns: dict[str, str]
    offset: int | None = None  # days, LMD only
    pseudonym: str = ""
    implicit: bool = False
    little: bool = True


# --- Entry point -----------------------------------------------------------------------------


def deidentify_dicom(
    src: BinaryIO | str | os.PathLike[str],
    dst: BinaryIO | str | os.PathLike[str],
    *,
    profile: Profile,
    keys: Keys,
    burned_in_rules: pixels.Rules | None = None,
    burned_in_reviewed: bool = False,
) -> FileReport:
    """De-identify ``src`` into ``dst`` (see the module's docstring); DeidError when unreadable.

    ``burned_in_reviewed=True``: a reviewer looked at this object and found no burned-in text, so the
    hold-back for "BurnedInAnnotation not NO and no rule covers it" is waived. A matching rule still
    masks its regions (and a compressed or unmaskable object needing a mask is still held back).
    """
    report = FileReport(kind="dicom", media_type="application/dicom")
    rules = burned_in_rules if burned_in_rules is not None else _default_rules()
    with _opened(src) as fp:
        size = _size(fp)
        dataset, deflated = _read_header(fp)
        pixel_start = fp.tell()
        pixel_header, pixel_length = b"", 0
        if not deflated:
            pixel_header, pixel_length = _pixel_header(fp, dataset, size, pixel_start)
        exact, patterns = annex_e.actions_for(profile.options)
        context = _Context(profile=profile, keys=keys, report=report, exact=exact, patterns=patterns)
        implicit, little = dataset.original_encoding
        context.implicit, context.little = bool(implicit), little is not False
        try:
            _prepare_subject(dataset, context)
            _clean_dataset(dataset, context, top=True)
            _clean_meta(dataset, context)
            _stamp(dataset, context)
        except DeidError:
            raise
        except Exception as exc:  # pydicom raises many kinds on malformed values
            raise DeidError(f"Malformed DICOM attribute: {exc}") from exc
        plan = _burned_in_plan(
            dataset, rules, compressed=deflated or (bool(pixel_header) and pixel_length is None),
            reviewed=burned_in_reviewed,
        )
        report.modality = MODALITIES.get(_text(dataset, 0x00080060).upper(), "")  # Modality
        report.study_date = _parse_date(_text(dataset, 0x00080020))  # StudyDate
        report.changed = True
        if plan.held_back:
            report.held_back = True
            report.reason = plan.reason
            return report
        if plan.rule is not None or burned_in_reviewed:
            # Masked by a rule, or a reviewer found no burned-in text: the object now carries none.
            _set(dataset, 0x00280301, "CS", "NO", context)  # BurnedInAnnotation
        with _output(dst) as out:
            try:
                _write_header(out, dataset, context, deflated=deflated)
            except Exception as exc:
                raise DeidError(f"The de-identified header could not be written: {exc}") from exc
            if pixel_header:
                out.write(pixel_header)
                _copy_pixels(fp, out, dataset, pixel_length, plan, report)
    return report


# --- Reading -------------------------------------------------------------------------------------


@contextlib.contextmanager
def _opened(src: Any) -> Iterator[BinaryIO]:
    if isinstance(src, (str, os.PathLike)):
        try:
            handle = open(src, "rb")  # noqa: SIM115
        except OSError as exc:
            raise DeidError(f"The file cannot be opened: {exc.strerror}") from exc
        with handle:
            yield handle
    else:
        yield src


def _size(fp: BinaryIO) -> int:
    here = fp.tell()
    fp.seek(0, os.SEEK_END)
    size = fp.tell()
    fp.seek(here)
    return size


def _read_header(fp: BinaryIO) -> tuple[Dataset, bool]:
    start = fp.tell()
    try:
        dataset = pydicom.dcmread(fp, stop_before_pixels=True)
    except InvalidDicomError as exc:
        raise DeidError("Not a DICOM file: no 'DICM' marker after the 128-byte preamble.") from exc
    except (EOFError, struct.error) as exc:
        raise DeidError(f"Truncated DICOM file: it ends inside the header ({exc}).") from exc
    except Exception as exc:
        raise DeidError(f"Malformed DICOM header: {exc}") from exc
    meta = getattr(dataset, "file_meta", None)
    syntax = str(meta.get("TransferSyntaxUID", "")) if meta is not None else ""
    if not syntax:
        raise DeidError("Malformed DICOM file: the file meta information has no TransferSyntaxUID.")
    if syntax == DeflatedExplicitVRLittleEndian:
        # The whole dataset is zlib-compressed: it can only be read whole.
        fp.seek(start)
        try:
            dataset = pydicom.dcmread(fp)
        except Exception as exc:
            raise DeidError(f"Malformed deflated DICOM file: {exc}") from exc
        return dataset, True
    return dataset, False


def _pixel_header(fp: BinaryIO, dataset: Dataset, size: int, start: int) -> tuple[bytes, int | None]:
    """The pixel data element's header bytes and value length (None: undefined, encapsulated)."""
    if start >= size:
        if "Rows" in dataset and "Columns" in dataset:
            raise DeidError("Truncated DICOM file: the image attributes are there but no pixel data.")
        return b"", 0
    little = dataset.original_encoding[1] if dataset.original_encoding[1] is not None else True
    implicit = dataset.original_encoding[0]
    order = "<" if little else ">"
    head = fp.read(8)
    if len(head) < 8:
        raise DeidError("Truncated DICOM file: it ends inside the pixel data element's header.")
    group, element = struct.unpack(order + "HH", head[:4])
    if (group << 16 | element) not in _PIXEL_TAGS:
        raise DeidError(f"Malformed DICOM file: unexpected element ({group:04X},{element:04X}).")
    if implicit:
        (length,) = struct.unpack(order + "L", head[4:8])
    elif head[4:6] in _LONG_VRS:
        more = fp.read(4)
        if len(more) < 4:
            raise DeidError("Truncated DICOM file: it ends inside the pixel data element's header.")
        head += more
        (length,) = struct.unpack(order + "L", more)
    else:
        (length,) = struct.unpack(order + "H", head[6:8])
    if length == 0xFFFFFFFF:
        return head, None
    if fp.tell() + length > size:
        raise DeidError(
            f"Truncated DICOM file: the pixel data should hold {length} bytes, "
            f"only {size - fp.tell()} remain."
        )
    return head, length


# --- The profile ---------------------------------------------------------------------------------


def _prepare_subject(dataset: Dataset, context: _Context) -> None:
    patient_id = _text(dataset, PATIENT_ID)
    if not patient_id:
        raise DeidError("The file has no PatientID: no pseudonym can be derived.")
    if not context.profile.institution_code.strip():
        raise DeidError("No institution code in the profile: no pseudonym can be derived.")
    context.pseudonym = _pseudonym(context, patient_id)
    context.report.subject_pseudonym = context.pseudonym
    if "LMD" in context.profile.options:
        context.offset = context.keys.date_offset_days(context.pseudonym)


def _pseudonym(context: _Context, patient_id: str) -> str:
    try:
        return context.keys.pseudonym(
            institution_code=context.profile.institution_code, patient_id=patient_id
        )
    except ValueError as exc:
        raise DeidError(str(exc)) from exc


def _text(dataset: Dataset, tag: int) -> str:
    """An attribute's text, from the raw bytes when they are plain ASCII (no conversion)."""
    item = dataset.get_item(tag)
    if item is None:
        return ""
    if getattr(item, "is_raw", False) and isinstance(item.value, bytes):
        raw = item.value
        if raw.isascii() and b"\x1b" not in raw:
            return raw.decode("ascii").rstrip("\0 ").strip()
    value = dataset[tag].value
    if isinstance(value, (list, pydicom.multival.MultiValue)):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value).strip()


def _vr_of(dataset: Dataset, tag: int) -> str:
    raw = dataset.get_item(tag)
    vr = getattr(raw, "VR", None)
    if vr in (None, "UN") or " or " in str(vr):
        try:
            vr = dictionary_VR(tag)
        except KeyError:
            vr = vr or "UN"
        if " or " in vr:
            vr = vr.split(" or ")[0]
    return vr


def _clean_dataset(dataset: Dataset, context: _Context, *, top: bool = False) -> None:
    exact, patterns = context.exact, context.patterns
    counts = context.report.actions
    private_kept = _private_kept(dataset, context) if "SP" in context.profile.options else None
    for tag in list(dataset.keys()):
        group, element = tag >> 16, tag & 0xFFFF
        if group & 1:
            if private_kept is not None and tag in private_kept:
                counts["K"] += 1
            else:
                del dataset[tag]
                counts["private"] += 1
            continue
        if group == 0x0000:  # command elements do not belong in a file
            del dataset[tag]
            counts["X"] += 1
            continue
        if element == 0 and group != 0x0002:
            del dataset[tag]
            continue
        if tag in (PATIENT_ID, PATIENT_NAME):
            _pseudonymise(dataset, tag, context, top=top)
            continue
        action = exact.get(tag)
        if action is None:
            if 0x5000 <= group <= 0x50FF:
                action = patterns.get("50xxxxxx", "X")
            elif 0x6000 <= group <= 0x60FF:
                key = "60xx4000" if element == 0x4000 else "60xx3000"
                action = patterns.get(key, "X")
            else:
                if _vr_of(dataset, tag) == "SQ":
                    _clean_items(dataset, tag, context)
                continue
        _apply(dataset, tag, action, context)


def _private_kept(dataset: Dataset, context: _Context) -> set[int]:
    safe = annex_e.safe_private()
    if not safe:
        return set()
    kept: set[int] = set()
    for tag in dataset.keys():  # noqa: SIM118 - iterating a Dataset converts its elements
        group, element = tag >> 16, tag & 0xFFFF
        if not group & 1 or element < 0x1000:
            continue
        creator_tag = (group << 16) | (element >> 8)
        if creator_tag not in dataset:
            continue
        creator = str(dataset[creator_tag].value or "").strip().upper()
        if (group, creator, element & 0xFF) in safe:
            kept.update({tag, creator_tag})
    return kept


def _pseudonymise(dataset: Dataset, tag: int, context: _Context, *, top: bool) -> None:
    counts = context.report.actions
    if top:
        value = context.pseudonym
    elif tag == PATIENT_ID:
        original = str(dataset.get(PATIENT_ID).value or "").strip()
        value = _pseudonym(context, original) if original else ""
    else:
        item_id = dataset.get(PATIENT_ID)
        original = str(item_id.value or "").strip() if item_id is not None else ""
        value = _pseudonym(context, original) if original else ""
    vr = "LO" if tag == PATIENT_ID else "PN"
    _set(dataset, tag, vr, value, context)
    counts["pseudonym"] += 1


def _clean_items(dataset: Dataset, tag: int, context: _Context) -> None:
    value = dataset[tag].value
    if isinstance(value, Sequence):
        for item in value:
            _clean_dataset(item, context)


def _apply(dataset: Dataset, tag: int, action: str, context: _Context) -> None:
    counts = context.report.actions
    if action == "X":
        del dataset[tag]
        counts["X"] += 1
        return
    vr = _vr_of(dataset, tag)
    if vr == "SQ":
        if action == "Z":
            dataset[tag] = DataElement(tag, "SQ", Sequence())
        else:
            _clean_items(dataset, tag, context)
        counts[action] += 1
        return
    if action == "K":
        counts["K"] += 1
        return
    if action == "U" and "UID" in context.profile.options:
        counts["K"] += 1
        return
    if action == "Z":
        _set(dataset, tag, vr, _empty(vr), context)
    elif action == "U" or (action == "D" and vr == "UI"):
        if vr == "UI":
            _set(dataset, tag, vr, _new_uids(_text(dataset, tag), context.keys), context)
        else:
            _set(dataset, tag, vr, _DUMMIES.get(vr, _empty(vr)), context)
    elif action == "D":
        _set(dataset, tag, vr, _DUMMIES.get(vr, _empty(vr)), context)
    elif action == "C":
        _clean_value(dataset, tag, vr, context)
    else:
        raise DeidError(f"Unknown action {action!r} in the Annex E table.")
    counts[action] += 1


_NUMBER_FORMATS = {"US": "H", "SS": "h", "UL": "L", "SL": "l", "FL": "f", "FD": "d", "UV": "Q", "SV": "q", "AT": "L"}
_BYTE_PADDED = frozenset({"UI", "OB", "UN", "OW", "OD", "OF", "OL", "OV"})


def _set(dataset: Dataset, tag: int, vr: str, value: Any, context: _Context) -> None:
    """Store a value we produced (ASCII text, a number, bytes) already encoded: no re-validation
    or character-set round trip when the file is written. Anything else goes through pydicom."""
    try:
        if value is None or value == "" or value == b"":
            data = b""
        elif isinstance(value, bytes):
            data = value
        elif vr in _NUMBER_FORMATS:
            data = struct.pack(("<" if context.little else ">") + _NUMBER_FORMATS[vr], value)
        else:
            text = "\\".join(value) if isinstance(value, list) else value
            data = text.encode("ascii")
    except (UnicodeEncodeError, struct.error, TypeError):
        dataset[tag] = DataElement(tag, vr, value)
        return
    if len(data) % 2:
        data += b"\0" if vr in _BYTE_PADDED else b" "
    dataset[tag] = RawDataElement(
        BaseTag(tag), vr, len(data), data, 0, context.implicit, context.little, True, False
    )


def _empty(vr: str) -> Any:
    if vr in ("OB", "OW", "OD", "OF", "OL", "OV", "UN"):
        return b""
    if vr in ("US", "SS", "UL", "SL", "UV", "SV", "FL", "FD", "AT"):
        return None
    return ""


def _new_uids(value: str, keys: Keys) -> Any:
    if not value:
        return ""
    if "\\" in value:
        return [keys.uid(v) if v.strip() else "" for v in value.split("\\")]
    return keys.uid(value)


def _clean_value(dataset: Dataset, tag: int, vr: str, context: _Context) -> None:
    options = context.profile.options
    if vr in ("DA", "DT") and context.offset is not None:
        element = dataset[tag]
        values = element.value if isinstance(element.value, (list, pydicom.multival.MultiValue)) else [element.value]
        shifted = [_shift(str(v or ""), vr, context.offset) for v in values]
        _set(dataset, tag, vr, shifted if len(shifted) > 1 else shifted[0], context)
        return
    if vr == "TM" and ("LMD" in options or "LFD" in options):
        return  # whole-day shifts leave the time of day as it was
    row = annex_e.row_for(tag)
    basic = annex_e.simplify(row.basic) if row is not None else "Z"
    if basic == "D":
        _set(dataset, tag, vr, _DUMMIES.get(vr, _empty(vr)), context)
    else:
        _set(dataset, tag, vr, _empty(vr), context)


def _shift(value: str, vr: str, offset: int) -> str:
    text = value.strip()
    if not text:
        return ""
    digits = text.replace(".", "") if vr == "DA" else text
    try:
        day = date(int(digits[0:4]), int(digits[4:6]), int(digits[6:8]))
    except (ValueError, IndexError):
        return ""  # a partial or invalid date cannot be shifted: removed
    if vr == "DA" and len(digits) != 8:
        return ""
    shifted = (day + timedelta(days=offset)).strftime("%Y%m%d")
    return shifted + (digits[8:] if vr == "DT" else "")


def _parse_date(value: str) -> date | None:
    text = value.strip().replace(".", "")
    if len(text) != 8:
        return None
    try:
        return date(int(text[0:4]), int(text[4:6]), int(text[6:8]))
    except ValueError:
        return None


def _clean_meta(dataset: Dataset, context: _Context) -> None:
    meta: FileMetaDataset = dataset.file_meta
    for tag in _META_REMOVED:
        if tag in meta:
            del meta[tag]
            context.report.actions["X"] += 1
    if "MediaStorageSOPInstanceUID" in meta and "UID" not in context.profile.options:
        meta.MediaStorageSOPInstanceUID = context.keys.uid(str(meta.MediaStorageSOPInstanceUID))
        context.report.actions["U"] += 1
    for tag in [t for t in meta.keys() if (t >> 16) & 1]:  # noqa: SIM118
        del meta[tag]


def method_description(profile: Profile) -> list[str]:
    """DeidentificationMethod values (LO, at most 64 characters each)."""
    table = annex_e.load_table()
    values = [f"PS3.15 Annex E Basic Profile, Table E.1-1 {table.edition}"[:64]]
    if profile.options:
        values.append(("Options: " + " ".join(sorted(profile.options)))[:64])
    return values


def _stamp(dataset: Dataset, context: _Context) -> None:
    profile = context.profile
    _set(dataset, 0x00120062, "CS", "YES", context)  # PatientIdentityRemoved
    _set(dataset, 0x00120063, "LO", method_description(profile), context)  # DeidentificationMethod
    codes = [annex_e.BASIC_CODE] + [annex_e.OPTION_CODES[o] for o in sorted(profile.options)]
    items = []
    for value, meaning in codes:
        item = Dataset()
        _set(item, 0x00080100, "SH", value, context)  # CodeValue
        _set(item, 0x00080102, "SH", "DCM", context)  # CodingSchemeDesignator
        _set(item, 0x00080104, "LO", meaning, context)  # CodeMeaning
        items.append(item)
    dataset[0x00120064] = DataElement(0x00120064, "SQ", Sequence(items))
    if "LMD" in profile.options:
        modified = "MODIFIED"
    elif "LFD" in profile.options:
        modified = "UNMODIFIED"
    else:
        modified = "REMOVED"
    _set(dataset, 0x00280303, "CS", modified, context)  # LongitudinalTemporalInformationModified


# --- Pixels ----------------------------------------------------------------------------------


@dataclass
class _Plan:
    held_back: bool = False
    reason: str = ""
    rule: pixels.Rule | None = None


_rules_cache: list[pixels.Rules] = []


def _default_rules() -> pixels.Rules:
    if not _rules_cache:
        _rules_cache.append(pixels.load_rules())
    return _rules_cache[0]


def _int(dataset: Dataset, name: str, default: int = 0) -> int:
    try:
        return int(dataset.get(name, default) or default)
    except (TypeError, ValueError):
        return default


def _burned_in_plan(dataset: Dataset, rules: pixels.Rules, *, compressed: bool, reviewed: bool = False) -> _Plan:
    if "Rows" not in dataset:
        return _Plan()
    modality = _text(dataset, 0x00080060).upper()  # Modality
    flag = _text(dataset, 0x00280301).upper()  # BurnedInAnnotation
    rule = rules.find(
        modality=modality,
        manufacturer=_text(dataset, 0x00080070),  # Manufacturer
        model=_text(dataset, 0x00081090),  # ManufacturerModelName
        rows=_int(dataset, "Rows"),
        columns=_int(dataset, "Columns"),
    )
    if rule is not None:
        if compressed:
            return _Plan(
                held_back=True,
                reason=(
                    f"Burned-in text must be masked (rule '{rule.name}') but the pixel data is "
                    "compressed; it cannot be masked without decoding."
                ),
            )
        geometry = _geometry(dataset)
        if not geometry.maskable:
            return _Plan(
                held_back=True,
                reason=f"Burned-in text must be masked (rule '{rule.name}') but the pixel layout "
                f"(BitsAllocated {geometry.bits_allocated}) cannot be masked.",
            )
        return _Plan(rule=rule)
    if flag == "NO" or reviewed:
        return _Plan()
    if flag or modality in rules.assume_burned_in_when_absent:
        shown = flag or "absent"
        return _Plan(
            held_back=True,
            reason=(
                f"BurnedInAnnotation is {shown} (modality {modality or 'unknown'}) and no "
                "burned-in text rule covers this modality and manufacturer: held back for review."
            ),
        )
    return _Plan()


def _geometry(dataset: Dataset) -> pixels.Geometry:
    return pixels.Geometry(
        rows=_int(dataset, "Rows"),
        columns=_int(dataset, "Columns"),
        samples=_int(dataset, "SamplesPerPixel", 1),
        bits_allocated=_int(dataset, "BitsAllocated"),
        planar=_int(dataset, "PlanarConfiguration"),
        frames=max(1, _int(dataset, "NumberOfFrames", 1)),
    )


def _copy_pixels(
    fp: BinaryIO, out: BinaryIO, dataset: Dataset, length: int | None, plan: _Plan, report: FileReport
) -> None:
    try:
        if length is None:
            _copy_encapsulated(fp, out, dataset)
        elif plan.rule is not None:
            geometry = _geometry(dataset)
            boxes = plan.rule.rectangles(geometry.rows, geometry.columns)
            report.actions["masked_lines"] += pixels.copy_masked(fp, out, length, geometry, boxes)
            report.actions["mask"] += 1
        else:
            pixels.copy_chunks(fp, out, length)
    except EOFError as exc:
        raise DeidError(f"Truncated DICOM file: the pixel data ends early ({exc}).") from exc
    # Anything after the pixel data (trailing padding, digital signatures) is dropped.
    rest = _size(fp) - fp.tell()
    if rest > 0:
        report.actions["X"] += 1


def _copy_encapsulated(fp: BinaryIO, out: BinaryIO, dataset: Dataset) -> None:
    order = "<" if dataset.original_encoding[1] in (True, None) else ">"
    while True:
        head = fp.read(8)
        if len(head) < 8:
            raise EOFError("the encapsulated pixel data has no sequence delimiter")
        group, element, length = struct.unpack(order + "HHL", head)
        out.write(head)
        if (group, element) == (0xFFFE, 0xE0DD):
            return
        if (group, element) != (0xFFFE, 0xE000) or length == 0xFFFFFFFF:
            raise DeidError(
                f"Malformed DICOM file: unexpected element ({group:04X},{element:04X}) in the "
                "encapsulated pixel data."
            )
        pixels.copy_chunks(fp, out, length)


# --- Writing ---------------------------------------------------------------------------------


def _write_header(out: BinaryIO, dataset: Dataset, context: _Context, *, deflated: bool) -> None:
    """Zeroed preamble, DICM, the meta group, the dataset (without the pixel data)."""
    if deflated:
        dataset.preamble = b"\0" * 128
        pydicom.dcmwrite(out, dataset, enforce_file_format=True)
        return
    # What dcmwrite does for a file in the same encoding as its source, without its copies.
    fp = DicomFileLike(out)
    fp.is_implicit_VR, fp.is_little_endian = context.implicit, context.little
    fp.write(b"\0" * 128 + b"DICM")
    write_file_meta_info(fp, dataset.file_meta, enforce_standard=True)
    write_dataset(fp, dataset)


@contextlib.contextmanager
def _output(dst: Any) -> Iterator[BinaryIO]:
    """A path is written through a temporary file renamed into place: never half a file."""
    if not isinstance(dst, (str, os.PathLike)):
        yield dst
        return
    target = Path(dst)
    target.parent.mkdir(parents=True, exist_ok=True)
    # Named by process and thread: two workers redoing the same file never share a partial file.
    partial = target.with_name(f".{target.name}.{os.getpid()}.{threading.get_ident()}.part")
    try:
        with open(partial, "wb") as handle:
            yield handle
        os.replace(partial, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(partial)
        raise
