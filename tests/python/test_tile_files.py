"""Tiled forwards of files read a region at a time (TIFF, memory-mapped
.npy), maps written to Zarr or .npy whole or not at all, and the peak
memory of a large image in a child process."""

import itertools
import os
import pathlib
import struct
import sys

import numpy as np
import pytest

import surgery
from surgery.map_store import load_map
from surgery.sources import ImageSource
from test_files import memory_mib, reset_peak_rss, run_isolated

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
    return surgery.dense_forward(lenet_conv, image).scores


def write_tiff(path, array, kind):
    if kind == "tiled":
        tifffile.imwrite(path, array, tile=(64, 64))
    elif kind == "striped":
        tifffile.imwrite(path, array, rowsperstrip=16, compression="zlib")
    elif kind == "pyramid":
        with tifffile.TiffWriter(path) as tif:
            tif.write(array, tile=(64, 64), subifds=1)
            tif.write(array[::2, ::2], tile=(64, 64), subfiletype=1)


@pytest.mark.parametrize("kind", ["tiled", pytest.param("striped", marks=pytest.mark.slow),
                                  pytest.param("pyramid", marks=pytest.mark.slow)])
def test_tiff_read_in_tiles_equals_the_whole_forward(lenet_conv, image, whole, tmp_path, kind):
    path = tmp_path / f"{kind}.tif"
    write_tiff(path, image, kind)
    dense = surgery.dense_forward(lenet_conv, path, tile=(100, 150))
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
    dense = surgery.dense_forward(lenet_conv, path, tile=120)
    assert isinstance(dense.image, np.memmap)
    assert np.abs(dense.scores - whole).max() <= TOLERANCE


@pytest.mark.parametrize("suffix", [".zarr", ".npy"])
def test_map_written_with_its_geometry(lenet_conv, image, whole, tmp_path, suffix):
    out = tmp_path / f"map{suffix}"
    dense = surgery.dense_forward(lenet_conv, image, tile=128, out=out, labels=list("0123456789"))
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
        surgery.dense_forward(lenet_conv, image, tile=128, out=out)
    surgery.dense_forward(lenet_conv, image[:100], tile=128, out=out, overwrite=True)
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
        surgery.dense_forward(lenet_conv, image, tile=100, out=tmp_path / f"map{suffix}")
    assert os.listdir(tmp_path) == []


def test_a_map_needs_a_known_suffix(lenet_conv, image, tmp_path):
    with pytest.raises(surgery.FileError, match=".zarr"):
        surgery.dense_forward(lenet_conv, image, tile=100, out=tmp_path / "map.png")


@pytest.mark.slow
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
    expected = surgery.dense_forward(surgery.fully_convolutionalize(*lenet).net, corner).scores
    got = np.asarray(scores[:, :expected.shape[1], :expected.shape[2]])
    assert np.abs(got - expected).max() <= TOLERANCE


# ---- the memory limit holds for the arrays a forward makes -----------------

LIMIT = 128 << 20


def sparse_tiff(path, side, tile=256):
    """A grey uint8 TIFF declaring side x side pixels in tiles whose offsets
    all point at one stored tile of zeros: 8 bytes a tile on disk (100000 x
    100000 in 1.3 MB)."""
    count = (-(-side // tile)) ** 2
    entries = [(256, 4, 1, side), (257, 4, 1, side), (258, 3, 1, 8), (259, 3, 1, 1),
               (262, 3, 1, 1), (277, 3, 1, 1), (322, 3, 1, tile), (323, 3, 1, tile)]
    offsets_at = 8 + 2 + 12 * (len(entries) + 2) + 4  # header, then the IFD
    counts_at = offsets_at + 4 * count
    data_at = counts_at + 4 * count
    entries += [(324, 4, count, offsets_at), (325, 4, count, counts_at)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHII", tag, kind, n, value) if kind == 4 else
        struct.pack("<HHIHH", tag, kind, n, value, 0) for tag, kind, n, value in entries)
    with open(path, "wb") as f:
        f.write(b"II*\0" + struct.pack("<I", 8) + ifd + bytes(4))
        f.write(struct.pack(f"<{count}I", *[data_at] * count))
        f.write(struct.pack(f"<{count}I", *[tile * tile] * count))
        f.write(bytes(tile * tile))


def sparse_npy(path, shape, dtype=np.uint8):
    """A .npy of zeros that takes no disk and no memory to make."""
    np.lib.format.open_memmap(path, mode="w+", dtype=dtype, shape=shape).flush()


def cap_private_memory(extra):
    """In a child: its private memory (what malloc and numpy take; not the
    files it maps) may grow by `extra` bytes more, so that code which
    ignores the memory limit fails at once with a MemoryError instead of
    taking the machine's memory."""
    import resource
    now = int(memory_mib("VmData") * 2**20)
    resource.setrlimit(resource.RLIMIT_DATA, (now + extra, resource.RLIM_INFINITY))


def refused_within(case, limit, what):
    """Runs case() in a forked child whose memory limit leaves `limit` bytes
    beside what this process's nets hold: it must raise MemoryLimitError
    saying `what`, while the child's peak RSS grows by less than `limit`."""
    def child():
        surgery.set_memory_limit(surgery.memory_in_use() + limit)
        cap_private_memory(2 * limit + (256 << 20))
        reset_peak_rss()
        start = memory_mib("VmRSS")
        try:
            case()
        except surgery.MemoryLimitError as error:
            assert what in str(error) and "memory limit" in str(error), error
        else:
            raise AssertionError("not refused")
        grown = memory_mib("VmHWM") - start
        assert grown < limit >> 20, f"peak RSS grew by {grown:.0f} MiB"
    outcome = run_isolated(child, timeout=60)
    assert outcome.kind == "ok", outcome


@pytest.mark.parametrize("kind", ["tiff", "npy", "array"])
def test_a_tiled_map_held_in_memory_is_refused_before_it_is_made(lenet, tmp_path, kind):
    """100000 x 100000 pixels, tile= asked for: the map in memory (10 classes,
    24993 x 24993 cells) would take 23 GiB."""
    side = 100000
    if kind == "tiff":
        image = tmp_path / "huge.tif"
        sparse_tiff(image, side)
        assert image.stat().st_size < 2 << 20
    elif kind == "npy":
        image = tmp_path / "huge.npy"
        sparse_npy(image, (side, side))

    else:
        image = np.zeros((side, side), np.uint8)  # 10 GB of address space, no page touched

    def case():
        net = surgery.fully_convolutionalize(*lenet).net
        surgery.dense_forward(net, image, tile=1000)
    refused_within(case, LIMIT, "map of")


def test_a_tile_larger_than_the_limit_is_refused_before_it_is_read(lenet, tmp_path):
    """A 6000 x 6000 tile of float64 pixels is 275 MiB as stored; the net
    shaped to it along each axis fits, so only the read would have been
    refused, after it was made."""
    image = tmp_path / "wide.npy"
    sparse_npy(image, (6000, 6000), np.float64)

    def case():
        net = surgery.fully_convolutionalize(*lenet).net
        surgery.dense_forward(net, image, tile=6000, out=tmp_path / "map.zarr")
    refused_within(case, LIMIT, "reading 6000x6000 pixels")
    assert not (tmp_path / "map.zarr").exists()


def test_a_plan_of_many_tiles_holds_only_its_rows_and_columns(lenet):
    """100000 x 100000 pixels in the smallest tiles: 24993^2 tiles, made one
    at a time as they are visited (a tuple of them would take 100 GiB)."""
    from surgery.tiles import plan_tiles, smallest_tile
    net = surgery.fully_convolutionalize(*lenet).net
    geo = surgery.geometry(net)
    side = 100000

    def cells_of(h, w):
        net.reshape(data=(1, 1, h, w))
        return tuple(net.blobs[net.outputs[0]].shape[2:])

    def case():
        cap_private_memory(1 << 30)
        reset_peak_rss()
        start = memory_mib("VmRSS")
        least = max(smallest_tile(geo, 0), smallest_tile(geo, 1))
        plan = plan_tiles(geo, (side, side), least, cells_of)
        rows = len(plan.rows)
        assert len(plan) == rows * rows and rows > 10000, (len(plan), rows)
        last = None
        for last in itertools.islice(plan, rows + 1):  # the first row and the next tile
            pass
        assert last.y == plan.rows[1] and last.x == plan.columns[0]
        cells = (side - 28) // 4 + 1  # LeNet: a 28-pixel window every 4 pixels
        assert plan.map_shape == (cells, cells)
        grown = memory_mib("VmHWM") - start
        assert grown < 64, f"peak RSS grew by {grown:.0f} MiB"
    outcome = run_isolated(case, timeout=60)
    assert outcome.kind == "ok", outcome


def test_a_plan_too_long_for_the_limit_is_refused(lenet):
    from surgery.tiles import plan_tiles, smallest_tile
    net = surgery.fully_convolutionalize(*lenet).net
    geo = surgery.geometry(net)
    least = smallest_tile(geo, 0)
    refused_within(lambda: plan_tiles(geo, (2**40, 28), least, lambda h, w: (1, 1)), LIMIT,
                   "tiles along H")


@pytest.mark.parametrize("use", ["detections", "argmax", "top"])
def test_a_map_on_disk_is_not_read_whole_past_the_limit(lenet, tmp_path, use):
    """A map written with out= is read lazily; what reads it whole (the
    detections, argmax, top) is refused first where it would not fit."""
    import zarr
    net = surgery.fully_convolutionalize(*lenet).net
    path = tmp_path / "map.zarr"
    zarr.create_array(str(path), shape=(10, 8000, 8000), chunks=(10, 256, 256),
                      dtype=np.float32, fill_value=0)  # 2.4 GiB of cells, none stored
    scores, _ = zarr.open_array(str(path), mode="r"), None
    dense = surgery.DenseMap(net, np.zeros((8, 8), np.float32), scores,
                             surgery.geometry(net), {}, None, finite=True)
    actions = {"detections": lambda: dense.detections(), "argmax": lambda: dense.argmax,
               "top": lambda: dense.top(3)}
    refused_within(actions[use], LIMIT, "10x8000x8000 map")


@pytest.mark.parametrize("side_by_side", [False, True])
def test_a_picture_of_a_huge_image_is_refused_before_it_is_drawn(lenet, tmp_path, side_by_side):
    """A tiled map's image may be of any size, and the overlay draws it 1:1
    (the side-by-side view resamples it whole): 20000 x 20000 pixels."""
    net = surgery.fully_convolutionalize(*lenet).net
    image = np.zeros((20000, 20000, 1), np.float32)  # 1.5 GiB of address space, no page touched
    scores = np.random.default_rng(0).random((10, 50, 50), dtype=np.float32)
    dense = surgery.DenseMap(net, image, scores, surgery.geometry(net), {}, None)
    picture = tmp_path / "huge.png"
    refused_within(lambda: dense.save_picture(picture, side_by_side=side_by_side), LIMIT,
                   "picture of a 20000x20000 image")
    assert not picture.exists()


def test_a_stacked_batch_is_refused_before_it_is_made():
    """Twenty 3 x 2000 x 2000 inputs (views of one array: nothing held)
    stacked for one forward would take 916 MiB; dense_forward then runs
    the batch in smaller ones (test_batching.py)."""
    from surgery.pinned import staged_batch
    part = np.zeros((3, 2000, 2000), np.float32)

    def case():
        with staged_batch(object(), [part] * 20):
            pass
    refused_within(case, LIMIT, "a batch of 20 inputs of 3x2000x2000")
