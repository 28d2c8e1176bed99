"""The rendered label families: fixed by their seed, and each varies what its name says."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from annotation.errors import LineInspectError
from vision.ocr.render_label import LABEL_FAMILIES, LATIN_ONLY_FAMILIES, family_case, render_family


@pytest.mark.parametrize("family", LABEL_FAMILIES)
def test_every_family_renders_the_same_label_from_the_same_seed_and_another_from_the_next(family):
    korean = family not in LATIN_ONLY_FAMILIES
    first, again, other = render_family(family, 3, korean), render_family(family, 3, korean), render_family(family, 4)
    assert np.array_equal(first.image, again.image) and first.fields == again.fields
    assert first.fields != other.fields
    assert first.image.ndim == 3 and first.image.shape[2] == 3
    assert [line for line in first.lines if first.fields["lot"] in line]  # the fields are printed


def test_hershey_fonts_have_no_hangul_so_that_family_refuses_korean():
    with pytest.raises(LineInspectError, match="Latin only"):
        render_family("hershey", 1, korean=True)


def test_light_on_dark_labels_are_mostly_dark_and_turned_ones_are_on_their_side_or_upside_down():
    dark = cv2.cvtColor(render_family("light-on-dark", 0).image, cv2.COLOR_BGR2GRAY)
    assert np.median(dark) < 80
    assert {family_case("turned", seed, False)[1].quarter_turns for seed in range(3)} == {1, 2, 3}


def test_small_and_large_text_families_print_at_the_sizes_they_name():
    small = [family_case("small-text", seed, False)[0].cap_px for seed in range(6)]
    large = [family_case("large-text", seed, False)[0].cap_px for seed in range(6)]
    assert max(small) < 14 and min(large) >= 60
