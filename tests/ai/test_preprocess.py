"""Images to model input: JPEG, PNG and DICOM decoded, checked against the card, resized, normalised."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from django.utils import translation
from PIL import Image
from pydicom.dataset import FileDataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, generate_uid

from portal.ai.preprocess import ImageRefused, InputSpec, image_kind, thumbnail_png, to_tensor

RGB_SPEC = InputSpec(64, 64, 3, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
GREY_SPEC = InputSpec(32, 32, 1, (0.5,), (0.5,))


@pytest.fixture(autouse=True)
def _english():
    with translation.override("en"):
        yield


def encode(pixels: np.ndarray | Image.Image, fmt: str = "PNG", **params) -> bytes:
    image = pixels if isinstance(pixels, Image.Image) else Image.fromarray(pixels)
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def gradient(width: int = 100, height: int = 80) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    return np.stack([xs * 255 // (width - 1), ys * 255 // (height - 1), np.full_like(xs, 128)], axis=2).astype(np.uint8)


def dicom(pixels: np.ndarray, *, photometric: str = "MONOCHROME2", slope: float | None = None,
          intercept: float | None = None, frames: int | None = None, with_pixels: bool = True,
          rows: int | None = None) -> bytes:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = FileDataset("", {}, file_meta=meta, preamble=b"\0" * 128)
    ds.SOPClassUID = meta.MediaStorageSOPClassUID
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.PatientName = "TEST^PATIENT"
    ds.Modality = "OT"
    ds.Rows = rows or pixels.shape[-3 if pixels.ndim == 3 and photometric == "RGB" else -2]
    ds.Columns = pixels.shape[-2] if photometric == "RGB" else pixels.shape[-1]
    ds.PhotometricInterpretation = photometric
    ds.SamplesPerPixel = 3 if photometric == "RGB" else 1
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    bits = pixels.dtype.itemsize * 8
    ds.BitsAllocated = bits
    ds.BitsStored = bits
    ds.HighBit = bits - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if slope is not None:
        ds.RescaleSlope = str(slope)
        ds.RescaleIntercept = str(intercept or 0)
    if frames:
        ds.NumberOfFrames = frames
    if with_pixels:
        ds.PixelData = np.ascontiguousarray(pixels).tobytes()
    out = io.BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# ---- kinds ---------------------------------------------------------------------------------------


def test_image_kind_from_the_signature():
    assert image_kind(encode(gradient(), "JPEG")) == "jpeg"
    assert image_kind(encode(gradient(), "PNG")) == "png"
    assert image_kind(dicom(np.zeros((40, 40), dtype=np.uint8))) == "dicom"


@pytest.mark.parametrize("data", [b"", b"%PDF-1.7 hello", encode(gradient(), "GIF"), b"GIF89a" + b"\0" * 200])
def test_image_kind_refuses_other_files(data):
    with pytest.raises(ImageRefused) as refused:
        image_kind(data)
    assert str(refused.value) == "This file is not a JPEG, PNG or DICOM image."


def test_to_tensor_refuses_a_non_image():
    with pytest.raises(ImageRefused, match="not a JPEG, PNG or DICOM image"):
        to_tensor(b"hello, world" * 20, RGB_SPEC)


def test_to_tensor_refuses_a_broken_png():
    data = encode(gradient())
    with pytest.raises(ImageRefused, match=r"^The image cannot be decoded: "):
        to_tensor(data[: len(data) // 2], RGB_SPEC)


# ---- PNG / JPEG ----------------------------------------------------------------------------------


def test_png_rgb_is_resized_scaled_and_normalised_per_channel():
    pixels = gradient(128, 96)
    spec = InputSpec(64, 48, 3, (0.1, 0.2, 0.3), (0.5, 0.25, 0.2))
    tensor = to_tensor(encode(pixels), spec)
    assert tensor.dtype == np.float32
    assert tensor.shape == (3, 48, 64)
    resized = np.asarray(Image.fromarray(pixels).resize((64, 48), Image.Resampling.BILINEAR), dtype=np.float32)
    expected = (resized / 255.0 - np.array([0.1, 0.2, 0.3])) / np.array([0.5, 0.25, 0.2])
    assert np.allclose(tensor, expected.transpose(2, 0, 1), atol=1e-5)
    assert tensor.flags.c_contiguous


def test_image_of_exactly_the_input_size_is_not_resampled():
    pixels = gradient(64, 64)
    tensor = to_tensor(encode(pixels), RGB_SPEC)
    assert np.allclose(tensor, (pixels.transpose(2, 0, 1) / 255.0 - 0.5) / 0.25, atol=1e-5)


def test_jpeg_rgb_is_accepted():
    tensor = to_tensor(encode(gradient(200, 150), "JPEG", quality=95), RGB_SPEC)
    assert tensor.shape == (3, 64, 64)
    # The red channel grows from left to right: mean of the right half above the left half.
    assert tensor[0, :, 32:].mean() > tensor[0, :, :32].mean() + 1


def test_large_jpeg_is_decoded_at_reduced_scale_close_to_a_full_decode():
    data = encode(np.kron(gradient(100, 100), np.ones((20, 20, 1), dtype=np.uint8)), "JPEG", quality=95)
    tensor = to_tensor(data, RGB_SPEC)
    full = np.asarray(Image.open(io.BytesIO(data)).convert("RGB").resize((64, 64), Image.Resampling.BILINEAR),
                      dtype=np.float32)
    assert np.abs(tensor - (full.transpose(2, 0, 1) / 255 - 0.5) / 0.25).mean() < 0.05


def test_greyscale_image_refused_by_an_rgb_model():
    with pytest.raises(ImageRefused) as refused:
        to_tensor(encode(np.full((80, 80), 100, dtype=np.uint8)), RGB_SPEC)
    assert str(refused.value) == "The model expects 3 channels (RGB); this image has 1 (greyscale)."


def test_colour_image_refused_by_a_greyscale_model():
    with pytest.raises(ImageRefused) as refused:
        to_tensor(encode(gradient()), GREY_SPEC)
    assert str(refused.value) == "The model expects 1 channel (greyscale); this image has 3 (RGB)."


def test_grey_picture_saved_as_rgb_is_taken_by_a_greyscale_model():
    grey = np.repeat(np.linspace(0, 255, 40, dtype=np.uint8)[None, :, None], 40, axis=0).repeat(3, axis=2)
    tensor = to_tensor(encode(grey), GREY_SPEC)
    assert tensor.shape == (1, 32, 32)


def test_greyscale_png_for_a_greyscale_model():
    pixels = np.full((40, 40), 255, dtype=np.uint8)
    tensor = to_tensor(encode(pixels), GREY_SPEC)
    assert tensor.shape == (1, 32, 32)
    assert np.allclose(tensor, 1.0)  # (1 - 0.5) / 0.5


def test_sixteen_bit_png_is_scaled_to_the_full_range():
    pixels = np.full((40, 40), 65535, dtype=np.uint16)
    tensor = to_tensor(encode(Image.fromarray(pixels)), GREY_SPEC)
    assert np.allclose(tensor, 1.0, atol=1e-4)


def test_rgba_drops_alpha_and_palette_and_la_are_expanded():
    rgba = np.dstack([gradient(), np.full((80, 100), 10, dtype=np.uint8)])
    assert to_tensor(encode(rgba), RGB_SPEC).shape == (3, 64, 64)
    assert np.allclose(to_tensor(encode(rgba), RGB_SPEC), to_tensor(encode(gradient()), RGB_SPEC))
    palette = Image.fromarray(gradient()).convert("P", palette=Image.Palette.ADAPTIVE, colors=16)
    assert to_tensor(encode(palette), RGB_SPEC).shape == (3, 64, 64)
    la = Image.fromarray(np.full((40, 40), 200, dtype=np.uint8)).convert("LA")
    assert to_tensor(encode(la), GREY_SPEC).shape == (1, 32, 32)
    with pytest.raises(ImageRefused, match="has 1 \\(greyscale\\)"):
        to_tensor(encode(la), RGB_SPEC)


@pytest.mark.parametrize(("width", "height"), [(32, 32), (63, 200), (200, 63)])
def test_image_smaller_than_the_input_is_refused(width, height):
    with pytest.raises(ImageRefused) as refused:
        to_tensor(encode(gradient(width, height)), RGB_SPEC)
    assert str(refused.value) == (
        f"The image is {width} × {height} pixels; this model needs at least 64 × 64."
    )


def _png_header_only(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\0" * 100)) + chunk(b"IEND", b""))


@pytest.mark.parametrize(("width", "height"), [(10_000, 8_001), (20_000, 20_000)])
def test_image_over_80_megapixels_is_refused_before_decoding(width, height):
    with pytest.raises(ImageRefused, match="megapixels are refused"):
        to_tensor(_png_header_only(width, height), RGB_SPEC)


# ---- DICOM ---------------------------------------------------------------------------------------


def test_dicom_monochrome_is_rescaled_then_scaled_min_max():
    raw = np.tile(np.arange(0, 1000, 10, dtype=np.uint16), (100, 1))  # 0..990 across
    tensor = to_tensor(dicom(raw, slope=2.0, intercept=-1024), GREY_SPEC)
    assert tensor.shape == (1, 32, 32)
    # min → 0 → (0 - 0.5) / 0.5 = -1 at the left edge, max → 255 → 1 at the right edge
    assert tensor[0, :, 0].mean() == pytest.approx(-1.0, abs=0.05)
    assert tensor[0, :, -1].mean() == pytest.approx(1.0, abs=0.05)


def test_dicom_monochrome1_is_inverted():
    raw = np.tile(np.arange(0, 1000, 10, dtype=np.uint16), (100, 1))
    tensor = to_tensor(dicom(raw, photometric="MONOCHROME1"), GREY_SPEC)
    assert tensor[0, :, 0].mean() == pytest.approx(1.0, abs=0.05)


def test_dicom_monochrome_refused_by_an_rgb_model():
    with pytest.raises(ImageRefused) as refused:
        to_tensor(dicom(np.zeros((80, 80), dtype=np.uint16)), RGB_SPEC)
    assert str(refused.value) == "The model expects 3 channels (RGB); this image has 1 (greyscale)."


def test_dicom_rgb_matches_the_same_pixels_as_png():
    pixels = gradient(100, 80)
    from_dicom = to_tensor(dicom(pixels, photometric="RGB"), RGB_SPEC)
    assert np.allclose(from_dicom, to_tensor(encode(pixels), RGB_SPEC))


def test_dicom_without_pixel_data_is_refused():
    with pytest.raises(ImageRefused) as refused:
        to_tensor(dicom(np.zeros((40, 40), dtype=np.uint8), with_pixels=False), GREY_SPEC)
    assert str(refused.value) == "The DICOM file holds no pixel data."


def test_dicom_multiframe_is_refused():
    frames = np.zeros((2, 40, 40), dtype=np.uint8)
    with pytest.raises(ImageRefused) as refused:
        to_tensor(dicom(frames, frames=2), GREY_SPEC)
    assert str(refused.value) == "The DICOM file holds 2 frames; upload single-frame images."


def test_dicom_too_small_is_refused():
    with pytest.raises(ImageRefused, match=r"^The image is 20 × 20 pixels; this model needs at least 32 × 32\.$"):
        to_tensor(dicom(np.zeros((20, 20), dtype=np.uint8)), GREY_SPEC)


def test_dicom_with_truncated_pixel_data_is_refused():
    data = dicom(np.zeros((40, 40), dtype=np.uint8), rows=400)
    with pytest.raises(ImageRefused, match=r"^The DICOM file's pixel data cannot be decoded: "):
        to_tensor(data, GREY_SPEC)


def test_input_spec_from_a_version_like_object():
    class Version:
        input_width, input_height, input_channels = 224, 200, 3
        input_mean, input_std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]

    assert InputSpec.from_version(Version()) == InputSpec(224, 200, 3, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))


# ---- thumbnails ------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["png", "jpeg", "dicom-grey", "dicom-rgb"])
def test_thumbnail_is_a_small_png(kind):
    pixels = gradient(300, 200)
    data = {
        "png": lambda: encode(pixels),
        "jpeg": lambda: encode(pixels, "JPEG"),
        "dicom-grey": lambda: dicom(pixels[:, :, 0].astype(np.uint16) * 16),
        "dicom-rgb": lambda: dicom(pixels, photometric="RGB"),
    }[kind]()
    thumbnail = thumbnail_png(data)
    assert thumbnail[:8] == b"\x89PNG\r\n\x1a\n"
    image = Image.open(io.BytesIO(thumbnail))
    assert image.size == (128, 85)
    assert image.mode == ("L" if kind == "dicom-grey" else "RGB")


def test_thumbnail_of_a_small_image_keeps_its_size():
    image = Image.open(io.BytesIO(thumbnail_png(encode(gradient(40, 30)), size=64)))
    assert image.size == (40, 30)


def test_thumbnail_refuses_what_is_not_an_image():
    with pytest.raises(ImageRefused):
        thumbnail_png(b"not an image")


def test_to_tensor_refuses_a_broken_png_even_when_pillow_loads_truncated_images(monkeypatch):
    # WeasyPrint sets PIL.ImageFile.LOAD_TRUNCATED_IMAGES = True for the whole process when imported.
    from PIL import ImageFile

    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", True)
    data = encode(gradient())
    with pytest.raises(ImageRefused):
        to_tensor(data[: len(data) // 2], RGB_SPEC)
    assert ImageFile.LOAD_TRUNCATED_IMAGES is True  # left as it was
