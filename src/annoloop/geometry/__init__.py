"""Geometry: shape kinds, the ``Annotations`` struct and every conversion between shape forms.

Geometry is stored relative (0..1 of image width and height): a box is (cx, cy, w, h), a point
(x, y), a line a (k, 2) array, a polygon a list of polygons of rings, a mask a COCO RLE dict.
Pixel, ``(row, col)``, ``xyxy`` and COCO ``xywh`` views are conversions here and nowhere else.
shapely and scikit-image are imported only inside the functions that use them.
"""

from __future__ import annotations

from annoloop.geometry.annotations import Annotations
from annoloop.geometry.boxes import (
    box_iou,
    cxcywh_to_xywh,
    cxcywh_to_xyxy,
    points_to_rowcol,
    rowcol_to_points,
    to_pixels,
    to_relative,
    xywh_to_cxcywh,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from annoloop.geometry.kinds import KIND_NAMES, Kind, kind_codes
from annoloop.geometry.masks import (
    MAX_MASK_PIXELS,
    mask_to_polygon,
    polygon_to_mask,
    rle_area,
    rle_bbox,
    rle_counts,
    rle_decode,
    rle_encode,
    rle_from_uncompressed,
    rle_to_uncompressed,
)
from annoloop.geometry.polygons import (
    as_line,
    as_shape,
    flat_to_ring,
    line_bbox,
    polygon_area,
    polygon_bbox,
    polygon_from_shapely,
    polygon_to_shapely,
    repair_polygon,
    ring_to_flat,
)
from annoloop.geometry.shapes_json import (
    bbox_of_shape,
    shape_from_json,
    shape_to_json,
    shapes_from_json,
    shapes_to_json,
)
from annoloop.geometry.validate import clip_annotations, validate_annotations

__all__ = [
    "KIND_NAMES",
    "MAX_MASK_PIXELS",
    "Annotations",
    "Kind",
    "as_line",
    "as_shape",
    "bbox_of_shape",
    "box_iou",
    "clip_annotations",
    "cxcywh_to_xywh",
    "cxcywh_to_xyxy",
    "flat_to_ring",
    "kind_codes",
    "line_bbox",
    "mask_to_polygon",
    "points_to_rowcol",
    "polygon_area",
    "polygon_bbox",
    "polygon_from_shapely",
    "polygon_to_mask",
    "polygon_to_shapely",
    "repair_polygon",
    "ring_to_flat",
    "rle_area",
    "rle_bbox",
    "rle_counts",
    "rle_decode",
    "rle_encode",
    "rle_from_uncompressed",
    "rle_to_uncompressed",
    "rowcol_to_points",
    "shape_from_json",
    "shape_to_json",
    "shapes_from_json",
    "shapes_to_json",
    "to_pixels",
    "to_relative",
    "validate_annotations",
    "xywh_to_cxcywh",
    "xywh_to_xyxy",
    "xyxy_to_cxcywh",
    "xyxy_to_xywh",
]
