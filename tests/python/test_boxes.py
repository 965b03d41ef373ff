"""Box files: CSV and COCO read to the same boxes; every bad file refused
with a typed error naming the file and the line (or annotation), a FIFO
refused before it is opened for good (in a child process, so that a hang
fails the test instead of stopping the suite)."""

import json
import os
import pathlib
import re
import sys

import pytest

from surgery.boxes import BOXES_BYTES, boxes_by_image, read_boxes
from surgery.errors import FileError, ParseError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))
from forkrun import run_isolated  # noqa: E402

CSV = "image,x0,y0,x1,y1,label\na.png,0,0,28,28,7\na.png,30,2,58,30,1\n\nb.png,4,5,10,12,7\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def corners(box_file):
    return {image: [(b.corners, b.label) for b in boxes]
            for image, boxes in box_file.boxes.items()}


def test_csv_and_coco_give_the_same_boxes(tmp_path):
    from_csv = read_boxes(write(tmp_path, "boxes.csv", CSV))
    coco = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "b.png"},
                       {"id": 3, "file_name": "empty.png"}],
            "categories": [{"id": 10, "name": "7"}, {"id": 11, "name": "1"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 10, "bbox": [0, 0, 28, 28]},
                            {"id": 2, "image_id": 1, "category_id": 11, "bbox": [30, 2, 28, 28]},
                            {"id": 3, "image_id": 2, "category_id": 10, "bbox": [4, 5, 6, 7]}]}
    from_coco = read_boxes(write(tmp_path, "boxes.json", json.dumps(coco)))
    assert corners(from_csv) == corners(from_coco) == {
        "a.png": [((0, 0, 28, 28), "7"), ((30, 2, 58, 30), "1")],
        "b.png": [((4, 5, 10, 12), "7")]}
    assert from_csv.labels == ["7", "1"]
    assert from_coco.images == ("a.png", "b.png", "empty.png")


@pytest.mark.parametrize("text, message", [
    ("image,x,y,x1,y1,label\n", "line 1: the header must be"),
    ("image,x0,y0,x1,y1,label\na.png,0,0,28\n", "line 2: 4 fields"),
    ("image,x0,y0,x1,y1,label\na.png,0,0,28,28,7\na.png,0,zero,28,28,7\n",
     "line 3: y0 is 'zero', not a number"),
    ("image,x0,y0,x1,y1,label\na.png,0,0,nan,28,7\n", "line 2: x1 is 'nan', not a finite"),
    ("image,x0,y0,x1,y1,label\na.png,5,0,5,28,7\n", "line 2: the box (5, 0, 5, 28) is empty"),
    ("image,x0,y0,x1,y1,label\na.png,-3,0,5,28,7\n", "line 2: the box starts at (-3, 0)"),
    ("image,x0,y0,x1,y1,label\na.png,0,0,5,28,\n", "line 2: no label"),
    ("image,x0,y0,x1,y1,label\n,0,0,5,28,7\n", "line 2: no image named"),
])
def test_bad_csv_names_file_and_line(tmp_path, text, message):
    path = write(tmp_path, "boxes.csv", text)
    with pytest.raises(ParseError, match=re.escape(message)) as caught:
        read_boxes(path)
    assert repr(path) in str(caught.value)


@pytest.mark.parametrize("change, message", [
    (lambda c: c["annotations"][0].update(image_id=9), "annotation 0 .id 1.: image_id 9"),
    (lambda c: c["annotations"][0].update(category_id=9), "annotation 0 .id 1.: category_id 9"),
    (lambda c: c["annotations"][0].update(bbox=[1, 2, 3]), r"bbox must be \[x, y, width"),
    (lambda c: c["annotations"][0].update(bbox=[1, 2, 0, 3]), "is empty"),
    (lambda c: c.pop("categories"), "'categories' must be a list"),
])
def test_bad_coco_names_file_and_annotation(tmp_path, change, message):
    coco = {"images": [{"id": 1, "file_name": "a.png"}], "categories": [{"id": 1, "name": "7"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 28, 28]}]}
    change(coco)
    path = write(tmp_path, "boxes.json", json.dumps(coco))
    with pytest.raises(ParseError, match=message) as caught:
        read_boxes(path)
    assert repr(path) in str(caught.value)


def test_fifo_and_enormous_files_refused_before_reading(tmp_path):
    fifo = tmp_path / "boxes.csv"
    os.mkfifo(fifo)
    outcome = run_isolated(lambda: read_boxes(str(fifo)), timeout=10)
    assert (outcome.kind, outcome.detail) == ("error", "FileError")
    assert "a FIFO, not a regular file" in outcome.message
    big = tmp_path / "big.csv"
    with open(big, "wb") as f:
        f.truncate(BOXES_BYTES + 1)  # sparse: nothing is written, nothing may be read
    with pytest.raises(FileError, match="more than the"):
        read_boxes(str(big))
    with pytest.raises(FileError, match="cannot read box file"):
        read_boxes(str(tmp_path / "missing.csv"))


def test_boxes_matched_to_the_images_given(tmp_path):
    box_file = read_boxes(write(tmp_path, "boxes.csv", CSV))
    images = [str(tmp_path / "a.png"), "other/b.png", "c.png"]
    matched = boxes_by_image(box_file, images)
    assert [len(matched[i]) for i in images] == [2, 1, 0]
    with pytest.raises(ParseError, match=r"line 5: image 'b.png' is not among the images"):
        boxes_by_image(box_file, images[:1])
    with pytest.raises(ParseError, match=r"line 5: image 'b.png' matches 2 of the images"):
        boxes_by_image(box_file, images + ["x/b.png"])
