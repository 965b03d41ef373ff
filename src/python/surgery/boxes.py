"""Ground-truth boxes per image, read from the two formats detection users
have: a CSV of ``image,x0,y0,x1,y1,label`` rows under that header, and COCO
detection JSON. Coordinates are pixels, x1 and y1 exclusive (as
``Detection.box``); COCO's ``[x, y, width, height]`` is converted.

Only a regular file of at most ``BOXES_BYTES`` is read (atomic_files), and
every refusal names the file and the line (CSV) or the annotation (COCO).
"""

from __future__ import annotations

import csv
import io
import math
import os
from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple

from .atomic_files import read_json_object, read_text
from .errors import ParseError

# A box is a few dozen bytes: 64 MiB is a million boxes, past any box file
# fine-tuning on one machine can use.
BOXES_BYTES = 64 * 2**20
COLUMNS = ("image", "x0", "y0", "x1", "y1", "label")


@dataclass(frozen=True)
class Box:
    """One object: class `label` in pixels [x0, x1) x [y0, y1) of `image`
    (as the box file names it); `where` says where the file states it."""
    image: str
    x0: float
    y0: float
    x1: float
    y1: float
    label: str
    where: str

    @property
    def corners(self) -> Tuple[float, float, float, float]:
        return self.x0, self.y0, self.x1, self.y1


@dataclass(frozen=True)
class BoxFile:
    """The boxes of a file, by image in the file's order; `images` lists
    every image the file names (COCO may list images without boxes)."""
    path: str
    boxes: Dict[str, List[Box]]
    images: Tuple[str, ...]

    @property
    def labels(self) -> List[str]:
        """The class names the boxes use, in order of first appearance."""
        seen: Dict[str, None] = {}
        for boxes in self.boxes.values():
            for box in boxes:
                seen.setdefault(box.label)
        return list(seen)


def _number(text: str, column: str, where: str) -> float:
    try:
        value = float(text)
    except (TypeError, ValueError):
        raise ParseError(f"{where}: {column} is {text!r}, not a number") from None
    if not math.isfinite(value):
        raise ParseError(f"{where}: {column} is {text!r}, not a finite number")
    return value


def _box(image: str, corners: Sequence[float], label: str, where: str) -> Box:
    x0, y0, x1, y1 = corners
    if not image:
        raise ParseError(f"{where}: no image named")
    if not label:
        raise ParseError(f"{where}: no label")
    if x0 < 0 or y0 < 0:
        raise ParseError(f"{where}: the box starts at ({x0:g}, {y0:g}), left of or above the "
                         "image; boxes are pixels from (0, 0)")
    if x1 <= x0 or y1 <= y0:
        raise ParseError(f"{where}: the box ({x0:g}, {y0:g}, {x1:g}, {y1:g}) is empty: x1 and y1 "
                         "must exceed x0 and y0 (they are exclusive)")
    return Box(image, x0, y0, x1, y1, label, where)


def _read_csv(path: str, text: str) -> BoxFile:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None or tuple(h.strip() for h in header) != COLUMNS:
        raise ParseError(f"box file {path!r} line 1: the header must be {','.join(COLUMNS)}, "
                         f"not {','.join(header or [])!r}")
    boxes: Dict[str, List[Box]] = {}
    for row in rows:
        where = f"box file {path!r} line {rows.line_num}"
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(COLUMNS):
            raise ParseError(f"{where}: {len(row)} fields, the header has {len(COLUMNS)}")
        image, *corners, label = (cell.strip() for cell in row)
        values = [_number(v, c, where) for v, c in zip(corners, COLUMNS[1:5])]
        boxes.setdefault(image, []).append(_box(image, values, label, where))
    return BoxFile(path, boxes, tuple(boxes))


def _coco_list(data: dict, key: str, path: str) -> list:
    value = data.get(key)
    if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
        raise ParseError(f"COCO file {path!r}: '{key}' must be a list of objects")
    return value


def _read_coco(path: str) -> BoxFile:
    data = read_json_object(path, "box file", BOXES_BYTES)
    names: Dict[object, str] = {}
    for k, category in enumerate(_coco_list(data, "categories", path)):
        if not isinstance(category.get("name"), str) or "id" not in category:
            raise ParseError(f"COCO file {path!r} category {k}: needs an id and a name")
        names[category["id"]] = category["name"]
    files: Dict[object, str] = {}
    for k, image in enumerate(_coco_list(data, "images", path)):
        if not isinstance(image.get("file_name"), str) or "id" not in image:
            raise ParseError(f"COCO file {path!r} image {k}: needs an id and a file_name")
        files[image["id"]] = image["file_name"]
    boxes: Dict[str, List[Box]] = {name: [] for name in files.values()}
    for k, note in enumerate(_coco_list(data, "annotations", path)):
        where = f"COCO file {path!r} annotation {k} (id {note.get('id')!r})"
        if note.get("image_id") not in files:
            raise ParseError(f"{where}: image_id {note.get('image_id')!r} is not in 'images'")
        if note.get("category_id") not in names:
            raise ParseError(f"{where}: category_id {note.get('category_id')!r} is not in "
                             "'categories'")
        bbox = note.get("bbox")
        if not isinstance(bbox, list) or len(bbox) != 4:
            raise ParseError(f"{where}: bbox must be [x, y, width, height]")
        x, y, w, h = (_number(v, c, where) for v, c in zip(bbox, ("x", "y", "width", "height")))
        image = files[note["image_id"]]
        boxes[image].append(_box(image, (x, y, x + w, y + h), names[note["category_id"]], where))
    return BoxFile(path, {k: v for k, v in boxes.items() if v}, tuple(boxes))


def read_boxes(path) -> BoxFile:
    """The boxes of a CSV box file or a COCO detection JSON file (told apart
    by the first non-blank character: ``{`` is JSON). Refused with ParseError
    naming the file and line or annotation: a wrong header, a field that is
    not a finite number, an empty box, a box starting before (0, 0), an
    image or label left blank, a COCO id that refers to nothing. FileError
    for a file that is not regular (a FIFO), unreadable or over BOXES_BYTES."""
    name = os.fsdecode(path)
    text = read_text(path, "box file", BOXES_BYTES)
    if text.lstrip().startswith("{"):
        return _read_coco(name)
    return _read_csv(name, text)


def _matches(box_file: BoxFile, image: str, images: Sequence[str]) -> List[str]:
    if image in images:
        return [image]
    beside = os.path.realpath(os.path.join(os.path.dirname(box_file.path), image))
    found = [path for path in images if os.path.realpath(path) == beside]
    return found or [path for path in images
                     if os.path.basename(path) == os.path.basename(image)]


def boxes_by_image(box_file: BoxFile, images: Sequence[str]) -> Dict[str, List[Box]]:
    """The boxes of each of `images` (paths as the run was given them). The
    box file's image matches the same path, else the path it names beside
    the box file, else the one image of that file name; one that matches
    none or several is refused, naming its first line. An image without
    boxes gets none: every window of it is background."""
    out: Dict[str, List[Box]] = {path: [] for path in images}
    for image, boxes in box_file.boxes.items():
        found = _matches(box_file, image, images)
        if len(found) != 1:
            why = ("is not among the images given" if not found
                   else f"matches {len(found)} of the images given by file name")
            raise ParseError(f"{boxes[0].where}: image {image!r} {why}: give it, or its full "
                             "path, in the box file")
        out[found[0]].extend(boxes)
    return out
