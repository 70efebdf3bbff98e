"""From the bytes of an uploaded or released image to the tensor a model's card asks for.

Plain Python (Pillow, pydicom, numpy); Django only for translated messages.

- ``image_kind(data)``: "jpeg", "png" or "dicom" from the first bytes, else ``ImageRefused``.
- ``to_tensor(data, spec)``: decode, check, resize, normalise → float32 (C, H, W):

  1. Decode. JPEG/PNG with Pillow; DICOM with pydicom's pixel data (single frame only):
     MONOCHROME1/2 → one channel, the modality rescale (slope, intercept) applied, then scaled
     min–max to 0..255 (MONOCHROME1 inverted, so that bright is dense as on a screen); RGB and YBR
     → three channels. Pillow modes: L, I;16, I, F and 1 are one channel (16-bit scaled to
     0..255); LA drops its alpha; RGBA, CMYK, YCbCr → RGB (alpha dropped); palette images are
     expanded to RGB.
  2. Channels. A model of 3 channels refuses a greyscale image, a model of 1 channel refuses a
     colour image — except an RGB image whose three channels are equal everywhere (a grey picture
     saved as RGB), which is taken as greyscale.
  3. Size. Refused when narrower or lower than the model's input (upscaling would invent
     detail), or over ``MAX_PIXELS`` (80 megapixels). Otherwise resized (bilinear, with Pillow's
     antialiasing when reducing; images three or more times the input first reduced by an integer
     factor) to exactly the input's width × height; the aspect ratio is not
     kept, as when the model was trained (the demo models are trained through this very function).
     Large JPEGs are decoded at a reduced DCT scale first (``Image.draft``), never below the
     input size.
  4. Normalise: value / 255, then (value − mean) / std per channel.

- ``thumbnail_png(data, size)``: a small PNG for the results table, for any decodable image.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.utils.translation import gettext as _
from PIL import Image, ImageFile, UnidentifiedImageError

MAX_PIXELS = 80_000_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


class ImageRefused(Exception):
    """An image the model cannot take; ``str(exc)`` is the translated reason, shown to the user."""


@dataclass(frozen=True)
class InputSpec:
    """The input a model's card describes: size, channels and normalisation per channel."""

    width: int
    height: int
    channels: int
    mean: tuple[float, ...]
    std: tuple[float, ...]

    @classmethod
    def from_version(cls, version: Any) -> InputSpec:
        """The spec of a ``portal.ai.models.ModelVersion`` (or anything with the same fields)."""
        return cls(
            width=int(version.input_width), height=int(version.input_height),
            channels=int(version.input_channels),
            mean=tuple(float(v) for v in version.input_mean),
            std=tuple(float(v) for v in version.input_std),
        )


def image_kind(data: bytes) -> str:
    """"jpeg", "png" or "dicom", from the file's signature; ``ImageRefused`` for anything else."""
    if data[:3] == b"\xff\xd8\xff":
        return "jpeg"
    if data[:8] == PNG_SIGNATURE:
        return "png"
    if data[128:132] == b"DICM":
        return "dicom"
    raise ImageRefused(_("This file is not a JPEG, PNG or DICOM image."))


def to_tensor(data: bytes, spec: InputSpec) -> np.ndarray:
    """The image ``data`` as the model's input: float32 (channels, height, width), normalised."""
    image = decode(data, target=(spec.width, spec.height))
    return image_to_tensor(image, spec)


def image_to_tensor(image: Image.Image, spec: InputSpec) -> np.ndarray:
    """A decoded image (mode L, F or RGB, as ``decode`` returns it) checked, resized, normalised."""
    image = _match_channels(image, spec.channels)
    width, height = image.size
    if width < spec.width or height < spec.height:
        raise ImageRefused(
            _("The image is %(width)d × %(height)d pixels; this model needs at least %(min_width)d × %(min_height)d.")
            % {"width": width, "height": height, "min_width": spec.width, "min_height": spec.height}
        )
    if image.size != (spec.width, spec.height):
        # reducing_gap: an image three or more times the input is first reduced by an integer
        # factor (box filter), then resampled; far faster on large images, visually the same.
        image = image.resize((spec.width, spec.height), Image.Resampling.BILINEAR, reducing_gap=3.0)
    pixels = np.asarray(image)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    mean = np.asarray(spec.mean, dtype=np.float32)[:, None, None]
    std = np.asarray(spec.std, dtype=np.float32)[:, None, None]
    # (x / 255 - mean) / std as one multiply (which also converts and transposes) and one
    # subtract, in place: this runs for every image of every job.
    tensor = np.empty((spec.channels, spec.height, spec.width), dtype=np.float32)
    np.multiply(pixels.transpose(2, 0, 1), 1.0 / (255.0 * std), out=tensor, casting="unsafe")
    tensor -= mean / std
    return tensor


def thumbnail_png(data: bytes, size: int = 128) -> bytes:
    """A PNG at most ``size`` pixels on its longer side; ``ImageRefused`` if undecodable."""
    image = decode(data, target=(size, size))
    if image.mode == "F":
        image = image.convert("L")
    image.thumbnail((size, size), Image.Resampling.BILINEAR)
    out = io.BytesIO()
    image.save(out, format="PNG", optimize=False)
    return out.getvalue()


def decode(data: bytes, *, target: tuple[int, int] | None = None) -> Image.Image:
    """The image as a Pillow image of mode "L", "F" (greyscale, 0..255) or "RGB".

    ``target`` (width, height) lets a large JPEG be decoded at a reduced scale no smaller than it.
    """
    kind = image_kind(data)
    if kind == "dicom":
        return _decode_dicom(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
        _check_pixels(*image.size)
        if kind == "jpeg" and target is not None:
            image.draft("RGB" if image.mode in ("RGB", "CMYK", "YCbCr") else image.mode, target)
        # WeasyPrint turns on Pillow's global LOAD_TRUNCATED_IMAGES when imported; a cut-off upload
        # must still be refused here, not padded with grey and classified.
        truncated_ok = ImageFile.LOAD_TRUNCATED_IMAGES
        ImageFile.LOAD_TRUNCATED_IMAGES = False
        try:
            image.load()
        finally:
            ImageFile.LOAD_TRUNCATED_IMAGES = truncated_ok
    except ImageRefused:
        raise
    except Image.DecompressionBombError:
        raise ImageRefused(_("The image is too large; images over %(limit)d megapixels are refused.")
                           % {"limit": MAX_PIXELS // 1_000_000}) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise ImageRefused(_("The image cannot be decoded: %(error)s") % {"error": exc}) from None
    return _normal_mode(image)


def _check_pixels(width: int, height: int) -> None:
    if width * height > MAX_PIXELS:
        raise ImageRefused(
            _("The image is %(width)d × %(height)d pixels; images over %(limit)d megapixels are refused.")
            % {"width": width, "height": height, "limit": MAX_PIXELS // 1_000_000}
        )


def _normal_mode(image: Image.Image) -> Image.Image:
    mode = image.mode
    if mode in ("L", "RGB", "F"):
        return image
    if mode == "1":
        return image.convert("L")
    if mode == "LA":
        return image.getchannel("L")
    if mode in ("I;16", "I;16L", "I;16B", "I;16N", "I"):
        pixels = np.asarray(image, dtype=np.float32)
        top = 65535.0 if pixels.max(initial=0) <= 65535 else float(pixels.max())
        return Image.fromarray(np.ascontiguousarray(pixels * (255.0 / top), dtype=np.float32))
    if mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    return image.convert("RGB")


def _match_channels(image: Image.Image, channels: int) -> Image.Image:
    has = 3 if image.mode == "RGB" else 1
    if has == channels:
        return image
    if channels == 1 and has == 3:
        pixels = np.asarray(image)
        if np.array_equal(pixels[:, :, 0], pixels[:, :, 1]) and np.array_equal(pixels[:, :, 0], pixels[:, :, 2]):
            return image.getchannel("R")
        raise ImageRefused(_("The model expects 1 channel (greyscale); this image has 3 (RGB)."))
    if channels == 3 and has == 1:
        raise ImageRefused(_("The model expects 3 channels (RGB); this image has 1 (greyscale)."))
    raise ImageRefused(
        _("The model expects %(expected)d channels; this image has %(actual)d.") % {"expected": channels, "actual": has}
    )


def _decode_dicom(data: bytes) -> Image.Image:
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        dataset = pydicom.dcmread(io.BytesIO(data))
    except (InvalidDicomError, OSError, ValueError, KeyError, TypeError, EOFError) as exc:
        raise ImageRefused(_("The DICOM file cannot be read: %(error)s") % {"error": exc}) from None
    if "PixelData" not in dataset:
        raise ImageRefused(_("The DICOM file holds no pixel data."))
    rows, columns = int(dataset.get("Rows", 0) or 0), int(dataset.get("Columns", 0) or 0)
    _check_pixels(columns, rows)
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    if frames > 1:
        raise ImageRefused(
            _("The DICOM file holds %(frames)d frames; upload single-frame images.") % {"frames": frames}
        )
    photometric = str(dataset.get("PhotometricInterpretation", "")).upper()
    try:
        pixels = dataset.pixel_array
    except Exception as exc:  # pydicom raises many kinds for undecodable pixel data
        raise ImageRefused(_("The DICOM file's pixel data cannot be decoded: %(error)s") % {"error": exc}) from None
    if photometric in ("MONOCHROME1", "MONOCHROME2"):
        return _dicom_grey(dataset, pixels, invert=photometric == "MONOCHROME1")
    if photometric == "RGB" or photometric.startswith("YBR"):
        if photometric.startswith("YBR") and not _converted_by_pydicom(dataset):
            from pydicom.pixels import convert_color_space

            pixels = convert_color_space(pixels, photometric, "RGB")
        if pixels.dtype != np.uint8:
            bits = int(dataset.get("BitsStored", 8) or 8)
            pixels = np.clip(pixels.astype(np.float32) * (255.0 / (2**bits - 1)), 0, 255).astype(np.uint8)
        return Image.fromarray(np.ascontiguousarray(pixels))
    raise ImageRefused(
        _("The DICOM file's photometric interpretation %(value)s is not supported.") % {"value": photometric or "—"}
    )


def _converted_by_pydicom(dataset: Any) -> bool:
    # pydicom converts YBR to RGB itself when it decodes JPEG-compressed pixel data.
    return bool(dataset.file_meta.TransferSyntaxUID.is_compressed)


def _dicom_grey(dataset: Any, pixels: np.ndarray, *, invert: bool) -> Image.Image:
    values = pixels.astype(np.float32)
    slope = float(dataset.get("RescaleSlope", 1) or 1)
    intercept = float(dataset.get("RescaleIntercept", 0) or 0)
    values = values * slope + intercept
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) * (255.0 / (high - low)) if high > low else np.zeros_like(values)
    if invert:
        scaled = 255.0 - scaled
    return Image.fromarray(np.ascontiguousarray(scaled, dtype=np.float32))
