"""The viewer's decode (core/data/grey_levels.py): raw values before the 8-bit stretch, the header window,
honest units, and the same limits and one-line refusals as ``decode.load_image``."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from PIL import Image

from tests.helpers import _photo, dicom_copy
from tl_desktop.core.data.decode import load_image
from tl_desktop.core.data.grey_levels import Windower, load_grey_levels, window_to_uint8
from tl_desktop.core.errors import ImageDecodeError


def test_ct_values_are_modality_rescaled_hounsfield_units(tmp_path):
    path = dicom_copy("CT_small.dcm", tmp_path / "ct.dcm")
    grey = load_grey_levels(path)
    ds = pydicom.dcmread(path)
    stored = ds.pixel_array.astype(np.float32)
    assert np.array_equal(grey.values, stored * float(ds.RescaleSlope) + float(ds.RescaleIntercept))
    assert grey.facts.units == "HU" and grey.facts.modality == "CT" and grey.window is None
    assert (grey.facts.width, grey.facts.height, grey.facts.bits) == (128, 128, 16)


def test_mr_has_its_header_window_and_no_units(tmp_path):
    grey = load_grey_levels(dicom_copy("MR_small.dcm", tmp_path / "mr.dcm"))
    assert grey.window == (600.0, 1600.0) and grey.facts.units is None and grey.rgb is None


def test_a_ct_whose_values_are_not_plausible_hu_gets_no_units(tmp_path):
    ds = pydicom.dcmread(dicom_copy("CT_small.dcm", tmp_path / "ct.dcm"))
    ds.RescaleSlope = 10  # values up to ~ 20,000: not Hounsfield units whatever the header says
    ds.save_as(tmp_path / "odd.dcm")
    assert load_grey_levels(tmp_path / "odd.dcm").facts.units is None


def test_monochrome1_is_marked_inverted(tmp_path):
    path = dicom_copy("MR_small.dcm", tmp_path / "m1.dcm", PhotometricInterpretation="MONOCHROME1")
    grey = load_grey_levels(path)
    assert grey.facts.inverted
    shown = window_to_uint8(grey.values, *grey.window, inverted=grey.facts.inverted)
    assert np.array_equal(shown, 255 - window_to_uint8(grey.values, *grey.window))


def test_a_16_bit_png_keeps_its_stored_values(tmp_path):
    values = (np.arange(64 * 48, dtype=np.uint32).reshape(48, 64) * 20).astype(np.uint16)
    Image.fromarray(values).save(tmp_path / "deep.png")
    grey = load_grey_levels(tmp_path / "deep.png")
    assert np.array_equal(grey.values, values.astype(np.float32))
    assert grey.value_range == (0.0, float(values.max())) and grey.facts.bits == 16 and grey.window is None


def test_an_8_bit_photo_is_returned_as_load_image_decodes_it(tmp_path):
    _photo("astronaut", side=80).save(tmp_path / "a.jpg")
    grey = load_grey_levels(tmp_path / "a.jpg")
    assert grey.values is None and grey.value_range is None
    assert np.array_equal(grey.rgb, np.asarray(load_image(tmp_path / "a.jpg")))
    assert (grey.facts.format, grey.facts.bits, grey.facts.photometric) == ("JPEG", 8, "colour (RGB)")


def test_the_decoders_limits_apply(tmp_path):
    with pytest.raises(ImageDecodeError, match="too large"):
        load_grey_levels(dicom_copy("CT_small.dcm", tmp_path / "ct.dcm"), max_pixels=100)
    with pytest.raises(ImageDecodeError, match="multi-frame DICOM"):
        load_grey_levels(dicom_copy("rtdose.dcm", tmp_path / "dose.dcm"))
    (tmp_path / "bad.png").write_bytes(b"not a png")
    with pytest.raises(ImageDecodeError, match="not an image"):
        load_grey_levels(tmp_path / "bad.png")


@pytest.mark.parametrize("scale", [1.0, 0.37])
def test_the_windower_matches_direct_windowing(scale):
    rng = np.random.default_rng(0)
    values = (rng.integers(-1024, 3000, (40, 50)) * scale).astype(np.float32)
    windower = Windower(values, (float(values.min()), float(values.max())))
    for centre, width in ((40.0, 400.0), (-600.0, 1500.0), (500.0, 3.0)):
        fast, exact = windower.render(centre, width), window_to_uint8(values, centre, width)
        assert np.abs(fast.astype(int) - exact).max() <= (0 if scale == 1.0 else 1)
