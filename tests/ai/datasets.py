"""Labelled data for the ai tests (see :mod:`annoloop.ai.sample_data`, which makes it)."""

from annoloop.ai.sample_data import (
    DIGIT_CLASSES,
    MOSAIC_PHOTOS,
    write_digits,
    write_point_mosaics,
)

__all__ = ["DIGIT_CLASSES", "MOSAIC_PHOTOS", "write_digits", "write_point_mosaics"]
