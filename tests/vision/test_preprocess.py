import cv2
import numpy as np
import pytest

from tests.conftest import jpeg_bytes
from vision.preprocess import ImageDecodeError, PreprocessSpec, decode, load_image, preprocess, reduction_factor


def test_preprocess_gives_normalised_chw_float32_of_the_input_size():
    spec = PreprocessSpec(height=64, width=96)
    x = preprocess(jpeg_bytes(300, 200), spec)
    assert x.shape == (3, 64, 96) and x.dtype == np.float32
    assert -3 < x.mean() < 3 and x.std() > 0.05


def test_gray_mode_replicates_one_channel():
    image = load_image(jpeg_bytes(120, 80), PreprocessSpec(height=32, width=32, color="gray"))
    assert image.shape == (32, 32, 3)
    assert np.array_equal(image[..., 0], image[..., 1]) and np.array_equal(image[..., 1], image[..., 2])


def test_letterbox_keeps_aspect_and_pads():
    wide = np.full((50, 200, 3), 200, np.uint8)
    ok, buf = cv2.imencode(".png", wide)
    image = load_image(buf.tobytes(), PreprocessSpec(height=64, width=64, resize="letterbox"))
    assert image.shape == (64, 64, 3)
    assert image[0].max() == 0 and image[-1].max() == 0  # padded rows
    assert image[32, 32, 0] == 200  # picture in the middle


def test_large_jpeg_is_decoded_reduced_but_small_one_is_not():
    spec = PreprocessSpec(height=128, width=128)
    assert reduction_factor("JPEG", 1920, 1080, spec) == 4
    assert reduction_factor("JPEG", 300, 300, spec) == 1
    assert reduction_factor("PNG", 4000, 4000, spec) == 1
    big = decode(jpeg_bytes(1920, 1080), spec)
    assert big.shape == (270, 480, 3)


def test_same_bytes_always_give_the_same_input():
    data = jpeg_bytes(1280, 960, seed=3)
    spec = PreprocessSpec(height=100, width=100)
    assert np.array_equal(preprocess(data, spec), preprocess(data, spec))


@pytest.mark.parametrize(
    "data, reason",
    [
        (b"", "empty"),
        (b"<html>not an image</html>", "not a readable image"),
        (jpeg_bytes(64, 64)[:40], "not a readable image"),
    ],
)
def test_unreadable_bytes_raise_a_decode_error_with_a_reason(data, reason):
    with pytest.raises(ImageDecodeError, match=reason):
        preprocess(data, PreprocessSpec(height=32, width=32))


def test_images_over_the_pixel_limit_are_refused_before_decoding():
    with pytest.raises(ImageDecodeError, match="over the limit"):
        preprocess(jpeg_bytes(400, 300), PreprocessSpec(height=32, width=32, max_pixels=100_000))


def test_bad_spec_values_are_user_errors():
    with pytest.raises(Exception, match="color"):
        PreprocessSpec(color="cmyk")
