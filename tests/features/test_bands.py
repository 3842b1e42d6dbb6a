"""The band -> stand-in birth year rule: the year lies inside the band on the day it is made."""

from __future__ import annotations

import datetime as dt

import pytest

from features.bands import BAND_NAMES, AgeBands


@pytest.mark.parametrize("edges", [(0, 6, 18, 60), (0, 3, 16, 65)])
def test_the_stand_in_year_falls_in_its_band(edges):
    bands = AgeBands(edges)
    for at in (dt.date(2026, 1, 1), dt.date(2026, 12, 31)):
        for band in BAND_NAMES:
            assert bands.band(bands.central_birth_year(band, at), at) == band


def test_the_stand_in_ages_are_the_middles_and_ten_past_the_open_band():
    at = dt.date(2026, 6, 1)
    ages = {band: at.year - AgeBands().central_birth_year(band, at) for band in BAND_NAMES}
    assert ages == {"preschool": 2, "school_age": 11, "working_age": 38, "elderly": 70}


def test_an_unknown_band_is_named():
    with pytest.raises(ValueError, match="age_band: 'teen'"):
        AgeBands().central_birth_year("teen", dt.date(2026, 1, 1))
