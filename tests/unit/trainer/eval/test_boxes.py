"""Box frame conversions: padded square <-> image, both ways."""

import pytest

from trainer.eval.boxes import (
    format_box,
    image_to_normalised,
    image_to_square,
    normalised_to_image,
    square_to_image,
    xywh_to_xyxy,
)


@pytest.mark.parametrize("size", [(160, 96), (96, 160), (64, 64)])
def test_round_trip_image_square_image(size: tuple[int, int]) -> None:
    w, h = size
    box = (10.0, 20.0, 50.0, 60.0)
    back = square_to_image(image_to_square(box, w, h), w, h)
    assert back == pytest.approx(box)
    assert normalised_to_image(image_to_normalised(box, w, h), w, h) == pytest.approx(box)


def test_padded_square_is_centred_on_wide_image() -> None:
    # 160x96 is padded to 160x160 with 32 rows above: the full image spans y in [0.2, 0.8].
    assert image_to_square((0.0, 0.0, 160.0, 96.0), 160, 96) == pytest.approx((0.0, 0.2, 1.0, 0.8))
    # and differs from lmms-eval's frame, normalised by the original size
    assert image_to_normalised((0.0, 0.0, 160.0, 96.0), 160, 96) == pytest.approx((0.0, 0.0, 1.0, 1.0))


def test_square_to_image_clips_to_the_image() -> None:
    assert square_to_image((0.0, 0.0, 1.0, 1.0), 160, 96) == pytest.approx((0.0, 0.0, 160.0, 96.0))


def test_format_and_xywh() -> None:
    assert format_box((0.123, 0.5, 0.996, 1.0)) == "[0.12, 0.50, 1.00, 1.00]"
    assert xywh_to_xyxy((1.0, 2.0, 3.0, 4.0)) == (1.0, 2.0, 4.0, 6.0)
    with pytest.raises(ValueError, match="positive"):
        image_to_square((0, 0, 1, 1), 0, 5)
