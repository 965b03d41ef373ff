"""Tiled forwards of files read a region at a time (TIFF, memory-mapped
.npy), maps written to Zarr or .npy whole or not at all, and the peak
memory of a large image in a child process."""

import os
import pathlib
import sys

import numpy as np
import pytest

import surgery
from surgery.map_store import load_map
from surgery.sources import ImageSource

tifffile = pytest.importorskip("tifffile")
pytest.importorskip("zarr")

TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def lenet_conv(lenet):
    return surgery.fully_convolutionalize(*lenet).net


@pytest.fixture(scope="module")
def image():
    return np.random.default_rng(5).integers(0, 256, (333, 410), dtype=np.uint8)


@pytest.fixture(scope="module")
def whole(lenet_conv, image):
    return lenet_conv.dense_forward(image).scores


def write_tiff(path, array, kind):
    if kind == "tiled":
        tifffile.imwrite(path, array, tile=(64, 64))
    elif kind == "striped":
        tifffile.imwrite(path, array, rowsperstrip=16, compression="zlib")
    elif kind == "pyramid":
        with tifffile.TiffWriter(path) as tif:
            tif.write(array, tile=(64, 64), subifds=1)
            tif.write(array[::2, ::2], tile=(64, 64), subfiletype=1)


@pytest.mark.parametrize("kind", ["tiled", "striped", "pyramid"])
def test_tiff_read_in_tiles_equals_the_whole_forward(lenet_conv, image, whole, tmp_path, kind):
    path = tmp_path / f"{kind}.tif"
    write_tiff(path, image, kind)
    dense = lenet_conv.dense_forward(path, tile=(100, 150))
    assert len(dense.tiles) > 1
    assert np.abs(dense.scores - whole).max() <= TOLERANCE


def test_planar_rgb_tiff_reads_as_the_array(tmp_path):
    rgb = np.random.default_rng(1).integers(0, 256, (70, 90, 3), dtype=np.uint8)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, np.moveaxis(rgb, -1, 0), planarconfig="separate", photometric="rgb")
    from surgery.sources import open_source
    source = open_source(path, 3)
    assert source.shape == (70, 90, 3)
    np.testing.assert_array_equal(source.read(slice(5, 40), slice(10, 80)), rgb[5:40, 10:80])


def test_memory_mapped_npy_equals_the_whole_forward(lenet_conv, image, whole, tmp_path):
    path = tmp_path / "image.npy"
    np.save(path, image)
    dense = lenet_conv.dense_forward(path, tile=120)
    assert isinstance(dense.image, np.memmap)
    assert np.abs(dense.scores - whole).max() <= TOLERANCE


@pytest.mark.parametrize("suffix", [".zarr", ".npy"])
def test_map_written_with_its_geometry(lenet_conv, image, whole, tmp_path, suffix):
    out = tmp_path / f"map{suffix}"
    dense = lenet_conv.dense_forward(image, tile=128, out=out, labels=list("0123456789"))
    scores, meta = load_map(out)
    assert np.abs(np.asarray(scores) - whole).max() <= TOLERANCE
    geo = surgery.geometry(lenet_conv)
    assert meta["stride"] == list(geo.stride) and meta["window"] == list(geo.window)
    assert meta["receptive_field"] == list(geo.receptive_field)
    assert meta["image_shape"] == list(image.shape) and meta["labels"][3] == "3"
    assert np.abs(np.asarray(dense.scores) - whole).max() <= TOLERANCE
    assert sorted(os.listdir(tmp_path)) == sorted(
        [out.name] + ([out.name + ".json"] if suffix == ".npy" else []))
    with pytest.raises(surgery.FileError, match="exists"):
        lenet_conv.dense_forward(image, tile=128, out=out)
    lenet_conv.dense_forward(image[:100], tile=128, out=out, overwrite=True)
    assert load_map(out)[1]["image_shape"] == [100, 410]


@pytest.mark.parametrize("suffix", [".zarr", ".npy"])
def test_regions_land_where_they_belong(tmp_path, suffix):
    # Regions of whole rows (one write per channel) and of part rows, as the
    # tiles of a map come, against the same cells set in an array.
    from surgery.map_store import MapWriter
    rng = np.random.default_rng(3)
    want = np.full((3, 7, 11), np.nan, np.float32)
    with MapWriter(str(tmp_path / f"map{suffix}"), want.shape, {}) as writer:
        for rows, columns in ((slice(0, 2), slice(0, 11)), (slice(2, 5), slice(0, 4)),
                              (slice(2, 5), slice(4, 11)), (slice(5, 7), slice(0, 11))):
            values = rng.standard_normal((3, rows.stop - rows.start,
                                          columns.stop - columns.start)).astype(np.float32)
            writer.write(rows, columns, values)
            want[:, rows, columns] = values
        writer.commit()
    np.testing.assert_array_equal(np.asarray(load_map(tmp_path / f"map{suffix}")[0]), want)


@pytest.mark.parametrize("channels,side", [(10, 256), (1000, 32), (100000, 16)])
def test_zarr_chunks_stay_a_few_mib_whatever_the_classes(tmp_path, channels, side):
    # Each tile's write re-encodes the chunks it touches: a chunk of 256x256
    # cells of 1000 classes would put 256 MiB in memory per write.
    import zarr
    from surgery.map_store import CHUNK_BYTES, MapWriter
    with MapWriter(str(tmp_path / "map.zarr"), (channels, 300, 300), {}) as writer:
        writer.commit()
    chunks = zarr.open_array(str(tmp_path / "map.zarr"), mode="r").chunks
    assert chunks == (channels, side, side)
    assert 4 * channels * side * side <= CHUNK_BYTES or side == 16


@pytest.mark.parametrize("suffix", [".zarr", ".npy"])
def test_a_failed_run_leaves_no_map(lenet_conv, image, tmp_path, monkeypatch, suffix):
    reads = []
    real = ImageSource.read

    def failing(self, rows, columns):
        reads.append(1)
        if len(reads) == 3:
            raise surgery.FileError("disk gone")
        return real(self, rows, columns)

    monkeypatch.setattr(ImageSource, "read", failing)
    with pytest.raises(surgery.FileError, match="disk gone"):
        lenet_conv.dense_forward(image, tile=100, out=tmp_path / f"map{suffix}")
    assert os.listdir(tmp_path) == []


def test_a_map_needs_a_known_suffix(lenet_conv, image, tmp_path):
    with pytest.raises(surgery.FileError, match=".zarr"):
        lenet_conv.dense_forward(image, tile=100, out=tmp_path / "map.png")


def test_large_tiff_through_lenet_within_a_memory_bound(lenet, tmp_path):
    """2048 x 2048 (the CI size; hardening/large_image.py runs 20000): the
    whole forward needs 3.1 GiB (the memory guard's estimate), the limit is
    128 MiB, so the forward tiles on its own; the peak resident memory of
    the child (207 MiB measured) stays under 400 MiB, and the map equals a
    whole forward of the same pixels (a corner, run here)."""
    sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))
    from large_image import run
    report = run(lenet, tmp_path, 2048, 128 * 2**20)
    cells = (2048 - 28) // 4 + 1
    assert report["whole_refused"] and report["tiles"] > 1
    assert report["map"] == [10, cells, cells]
    assert report["peak"] < 400 * 2**20, f"peak RSS {report['peak'] / 2**20:.0f} MiB"
    scores, meta = load_map(tmp_path / "large.zarr")
    assert meta["image_shape"] == [2048, 2048]
    corner = tifffile.imread(tmp_path / "large.tif")[:300, :400]
    expected = surgery.fully_convolutionalize(*lenet).net.dense_forward(corner).scores
    got = np.asarray(scores[:, :expected.shape[1], :expected.shape[2]])
    assert np.abs(got - expected).max() <= TOLERANCE
