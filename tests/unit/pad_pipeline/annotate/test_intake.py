import io

import numpy as np
from PIL import Image

from pad_pipeline.annotate.config import IntakeConfig
from pad_pipeline.annotate.intake import DecodedImage, IntakeFailure, decode_image


def test_every_bad_input_ends_as_sample_or_named_failure(bad_corpus):
    folder, expected = bad_corpus
    for name, outcome in expected.items():
        result = decode_image((folder / name).read_bytes(), IntakeConfig())
        if outcome == "sample":
            assert isinstance(result, DecodedImage), (name, result)
            assert result.pixels.dtype == np.uint8 and result.pixels.ndim == 3 and result.pixels.shape[2] == 3
            stored = np.asarray(Image.open(io.BytesIO(result.jpeg)).convert("RGB"))
            assert np.array_equal(stored, result.pixels), f"{name}: stored image is not the annotated one"
        else:
            assert isinstance(result, IntakeFailure) and result.reason == outcome, (name, result)


def test_exif_orientation_applied(bad_corpus):
    folder, _ = bad_corpus
    result = decode_image((folder / "exif6.jpg").read_bytes(), IntakeConfig())
    assert result.pixels.shape[:2] == (64, 48)  # stored 64 wide x 48 high, rotated by 90 degrees
    assert Image.open(io.BytesIO(result.jpeg)).getexif().get(0x0112, 1) == 1


def test_plain_jpeg_is_stored_byte_for_byte():
    buf = io.BytesIO()
    Image.fromarray(np.full((20, 30, 3), 90, np.uint8)).save(buf, format="JPEG")
    result = decode_image(buf.getvalue(), IntakeConfig())
    assert result.jpeg == buf.getvalue()


def test_transparency_composited_on_white_and_16bit_scaled():
    rgba = Image.new("RGBA", (16, 16), (0, 0, 0, 0))
    buf = io.BytesIO()
    rgba.save(buf, format="PNG")
    result = decode_image(buf.getvalue(), IntakeConfig())
    assert result.pixels.min() >= 250  # fully transparent black -> white (JPEG may wobble slightly)
    sixteen = Image.fromarray(np.full((16, 16), 65535, np.uint16))
    buf = io.BytesIO()
    sixteen.save(buf, format="PNG")
    assert decode_image(buf.getvalue(), IntakeConfig()).pixels.min() >= 250


def test_limits():
    buf = io.BytesIO()
    Image.new("RGB", (100, 80)).save(buf, format="PNG")
    assert decode_image(buf.getvalue(), IntakeConfig(max_pixels=7999)).reason == "too_large"
    assert decode_image(buf.getvalue(), IntakeConfig(max_bytes=10)).reason == "too_large"
    resized = decode_image(buf.getvalue(), IntakeConfig(max_side=50))
    assert resized.pixels.shape == (40, 50, 3)
