"""Every file the package writes or reads for the user. Writes appear whole,
by a rename, with the permissions a plain open() gives a new file (not the
temporary's private 0600) or those of the file replaced, never over a FIFO,
device, folder or input, and through a symbolic link; a failed write leaves
nothing behind. Reads take regular files only, bounded before a byte is read
(in a child process: the old code hung or allocated what a header claimed)."""

import io
import os
import pathlib
import resource
import stat
import sys

import numpy as np
import pytest

import surgery
from surgery import atomic_files
from surgery.atomic_files import Outputs, replacing, write_bytes, write_text
from surgery.map_store import MapWriter, load_map
from surgery.preprocess import load_mean
from test_files import memory_mib, reset_peak_rss, snapshot

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))
from forkrun import run_isolated  # noqa: E402


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def write_map(path, overwrite=False):
    with MapWriter(str(path), (2, 3, 4), {}, overwrite=overwrite) as writer:
        writer.write(slice(0, 3), slice(0, 4), np.zeros((2, 3, 4), np.float32))
        writer.commit()


def test_text_bytes_and_maps_get_a_new_files_permissions(tmp_path, umask_022):
    write_text(str(tmp_path / "a.json"), "{}\n")
    write_bytes(str(tmp_path / "b.png"), b"\x89PNG")
    write_map(tmp_path / "map.npy")
    assert mode(tmp_path / "a.json") == mode(tmp_path / "b.png") == 0o644
    assert mode(tmp_path / "map.npy") == mode(tmp_path / "map.npy.json") == 0o644
    assert (tmp_path / "a.json").read_text() == "{}\n"


def test_a_zarr_map_gets_a_new_folders_permissions(tmp_path, umask_022):
    pytest.importorskip("zarr")  # the [tiles] extra
    write_map(tmp_path / "map.zarr")
    assert mode(tmp_path / "map.zarr") == 0o755


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "out.txt"
    target.write_text("old")
    with pytest.raises(RuntimeError):
        with replacing(str(target)) as f:
            f.write("half")
            raise RuntimeError("disk gone")
    assert target.read_text() == "old"
    assert os.listdir(tmp_path) == ["out.txt"]


# --- what an output may replace -------------------------------------------
#
# The rules are Net.save's (test_files.py): a FIFO, a device or a folder is
# never replaced, a symbolic link is written through, a dangling one refused,
# a read-only file refused, and a replaced file keeps its mode.

WRITERS = {
    "text": lambda path: write_text(path, "{}\n"),
    "bytes": lambda path: write_bytes(path, b"\x89PNG"),
    "npy map": lambda path: write_map(str(path) + ".npy", overwrite=True),
}


def special_target(tmp_path, kind, name="victim"):
    """`name` in tmp_path as something that is not a plain file: a FIFO, a
    link to /dev/null, a folder, a dangling link."""
    path = tmp_path / name
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "link to /dev/null":
        path.symlink_to("/dev/null")
    elif kind == "folder":
        path.mkdir()
    elif kind == "dangling link":
        path.symlink_to(tmp_path / "nowhere")
    return path


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/null", "folder", "dangling link"])
def test_what_is_not_a_regular_file_is_never_replaced(tmp_path, writer, kind):
    path = special_target(tmp_path, kind)
    if writer == "npy map":
        path.rename(tmp_path / "victim.npy")
        path = tmp_path / "victim.npy"
    null = os.stat("/dev/null")
    before = snapshot(path)
    with pytest.raises(surgery.FileError) as error:
        WRITERS[writer](tmp_path / "victim")
    assert "victim" in str(error.value)
    assert ("missing file" if kind == "dangling link" else "not a regular file") in str(
        error.value)
    assert snapshot(path) == before
    assert sorted(os.listdir(tmp_path)) == [path.name]  # no temporary left
    after = os.stat("/dev/null")
    assert stat.S_ISCHR(after.st_mode) and (after.st_ino, after.st_rdev) == (null.st_ino,
                                                                            null.st_rdev)


def test_a_zarr_map_never_replaces_a_fifo(tmp_path):
    pytest.importorskip("zarr")
    fifo = tmp_path / "map.zarr"
    os.mkfifo(fifo)
    before = snapshot(fifo)
    with pytest.raises(surgery.FileError, match="not a folder"):
        MapWriter(str(fifo), (1, 2, 2), {}, overwrite=True)
    assert snapshot(fifo) == before


def test_a_symlink_is_written_through_and_the_mode_kept(tmp_path, umask_022):
    real, link = tmp_path / "real.json", tmp_path / "link.json"
    real.write_text("old")
    real.chmod(0o640)
    link.symlink_to(real)
    write_text(str(link), "new")
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert real.read_text() == "new" and mode(real) == 0o640
    private = tmp_path / "private.png"
    private.write_bytes(b"old")
    private.chmod(0o600)
    write_bytes(str(private), b"new")
    assert private.read_bytes() == b"new" and mode(private) == 0o600


def test_a_map_is_written_through_its_symlink(tmp_path):
    folder = tmp_path / "elsewhere"
    folder.mkdir()
    (folder / "real.npy").write_bytes(b"old")
    link = tmp_path / "map.npy"
    link.symlink_to(folder / "real.npy")
    with MapWriter(str(link), (1, 2, 2), {"k": 1}, overwrite=True) as writer:
        writer.write(slice(0, 2), slice(0, 2), np.ones((1, 2, 2), np.float32))
        writer.commit()
    assert link.is_symlink()
    np.testing.assert_array_equal(np.load(folder / "real.npy"), np.ones((1, 2, 2)))
    assert load_map(str(link))[1]["k"] == 1


def test_a_read_only_file_is_not_replaced(tmp_path):
    locked = tmp_path / "locked.json"
    locked.write_text("keep me")
    locked.chmod(0o444)
    before = snapshot(locked)
    with pytest.raises(surgery.FileError, match="read-only"):
        write_text(str(locked), "new")
    assert snapshot(locked) == before


def test_an_output_may_not_be_an_input_or_another_output(tmp_path):
    model = tmp_path / "m.prototxt"
    model.write_text("name: 'x'")
    hard, soft = tmp_path / "hard.json", tmp_path / "soft.json"
    os.link(model, hard)
    soft.symlink_to(model)
    outputs = Outputs([("the prototxt", str(model)), ("the mean file", None)])
    for path in (model, hard, soft, tmp_path / "." / "m.prototxt"):
        with pytest.raises(surgery.FileError, match="which is the prototxt"):
            outputs.claim(str(path), "--json")
    assert outputs.claim(str(tmp_path / "d.json"), "--json") == str(tmp_path / "d.json")
    with pytest.raises(surgery.FileError, match="--json writes too"):
        outputs.claim(str(tmp_path / "d.json"), "--csv")
    assert model.read_text() == "name: 'x'"


# --- what a reader reads ---------------------------------------------------

def refusal_peak_mib(case):
    """Runs `case` in a child, which must raise a typed error; the child's
    peak RSS growth during it, in MiB. The child may not grow by more than
    1 GiB of address space: a reader without bound fails, not the machine."""
    def measured():
        room = int(memory_mib("VmSize") + 1024) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (room, resource.getrlimit(resource.RLIMIT_AS)[1]))
        reset_peak_rss()
        start = memory_mib("VmRSS")
        try:
            case()
        except surgery.SurgeryError as error:
            raise type(error)(f"{memory_mib('VmHWM') - start:.1f} MiB: {error}") from None
        raise AssertionError("not refused")
    outcome = run_isolated(measured, timeout=20)
    assert outcome.kind == "error", outcome
    return float(outcome.message.split(" MiB")[0]), outcome


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_labels_that_never_end_are_refused_at_once(tmp_path, kind):
    path = tmp_path / "labels.txt"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    grown, outcome = refusal_peak_mib(lambda: surgery.load_labels(path))
    assert outcome.detail == "FileError", outcome
    assert ("character device" if kind == "/dev/zero" else "FIFO") in outcome.message, outcome
    assert grown < 8, outcome


def test_labels_larger_than_any_labels_file_are_refused_unread(tmp_path):
    path = tmp_path / "labels.txt"
    with open(path, "wb") as f:
        f.truncate(atomic_files.LABELS_BYTES + 1)  # sparse: no disk, no time
    grown, outcome = refusal_peak_mib(lambda: surgery.load_labels(path))
    assert outcome.detail == "FileError" and "labels.txt" in outcome.message, outcome
    assert grown < 8, outcome


def test_labels_are_read_as_open_reads_them(tmp_path):
    path = tmp_path / "labels.txt"
    path.write_bytes("n01 tench, Tinca\r\n\r\ncaf\u00e9\rlast".encode())
    with open(path, encoding="utf-8") as f:
        want = [line.strip().split(",")[0] for line in f if line.strip()]
    assert surgery.load_labels(path) == want == ["n01 tench", "caf\u00e9", "last"]


def npy_bytes(header: dict, data: bytes = b"") -> bytes:
    """A .npy file of `header` (as numpy writes one) and `data`."""
    out = io.BytesIO()
    np.lib.format.write_array_header_1_0(out, header)
    return out.getvalue() + data


def test_a_forged_npy_mean_is_refused_from_its_header(tmp_path):
    """70 bytes whose header claims 447 GiB: numpy would try to allocate it."""
    path = tmp_path / "mean.npy"
    path.write_bytes(npy_bytes({"descr": "<f4", "fortran_order": False,
                                "shape": (3, 200000, 200000)}, b"\0" * 6))
    assert path.stat().st_size < 200

    def case():
        surgery.set_memory_limit(256 * 2**20)
        load_mean(path)
    grown, outcome = refusal_peak_mib(case)
    assert outcome.detail == "FileError", outcome
    assert "mean.npy" in outcome.message and "(3, 200000, 200000)" in outcome.message
    assert grown < 8, outcome


def test_an_npy_mean_beyond_the_memory_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "mean.npy"
    np.save(path, np.zeros((3, 1024, 1024), np.float32))  # 12 MiB

    def case():
        surgery.set_memory_limit(8 * 2**20)
        load_mean(path)
    grown, outcome = refusal_peak_mib(case)
    assert outcome.detail == "MemoryLimitError", outcome
    assert "mean.npy" in outcome.message and "(3, 1024, 1024)" in outcome.message
    assert grown < 8, outcome


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero"])
def test_an_npy_mean_that_is_not_a_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / "mean.npy"
    os.mkfifo(path) if kind == "fifo" else path.symlink_to("/dev/zero")
    _, outcome = refusal_peak_mib(lambda: load_mean(path))
    assert outcome.detail == "FileError" and "not a regular file" in outcome.message, outcome


def test_npy_means_that_are_not_numbers_or_not_npy(tmp_path, lenet):
    objects = tmp_path / "objects.npy"
    objects.write_bytes(npy_bytes({"descr": "|O", "fortran_order": False, "shape": (2,)},
                                  b"\0" * 16))
    with pytest.raises(surgery.FileError, match="not real numbers") as error:
        load_mean(objects)
    assert "allow_pickle" not in str(error.value)
    with pytest.raises(surgery.FileError, match="not a mean file") as error:
        load_mean(lenet[1])
    assert "allow_pickle" not in str(error.value) and lenet[1].name in str(error.value)
    huge_header = tmp_path / "header.npy"
    huge_header.write_bytes(np.lib.format.MAGIC_PREFIX + b"\x02\x00" + (2**31).to_bytes(4,
                                                                                "little"))
    with pytest.raises(surgery.FileError, match="header of 2,147,483,648 bytes"):
        load_mean(huge_header)


@pytest.mark.parametrize("array", [
    np.arange(24, dtype=">f8").reshape(2, 3, 4),
    np.asfortranarray(np.arange(24, dtype=np.uint8).reshape(2, 3, 4)),
    np.full(3, 5.0, np.float32),
    np.array(7.0),
    np.zeros((3, 0, 2), np.float32),
])
def test_an_npy_mean_reads_as_numpy_reads_it(tmp_path, array):
    path = tmp_path / "mean.npy"
    np.save(path, array)
    mean = load_mean(path)
    want = np.load(path)
    assert mean.dtype == want.dtype and mean.shape == want.shape
    np.testing.assert_array_equal(mean, want)


@pytest.mark.parametrize("content", ["[]", "null", "[" * 100000 + "]" * 100000, "fifo"])
def test_a_map_geometry_that_is_not_an_object_is_a_file_error(tmp_path, content):
    write_map(tmp_path / "map.npy")
    side = tmp_path / "map.npy.json"
    side.unlink()
    if content == "fifo":
        os.mkfifo(side)
    else:
        side.write_text(content)
    outcome = run_isolated(lambda: load_map(str(tmp_path / "map.npy")), timeout=20)
    assert outcome.kind == "error" and outcome.detail == "FileError", outcome
    assert "map.npy.json" in outcome.message


def test_a_forged_npy_map_is_refused_from_its_header(tmp_path):
    write_map(tmp_path / "map.npy")
    (tmp_path / "map.npy").write_bytes(npy_bytes(
        {"descr": "<f4", "fortran_order": False, "shape": (1000, 100000, 100000)}))
    with pytest.raises(surgery.FileError, match="truncated or forged"):
        load_map(str(tmp_path / "map.npy"))


# --- means the fuzzer found (hardening/fuzz/crashes/mean), replayed here ---

MEAN_CRASHES = pathlib.Path(__file__).resolve().parents[2] / "hardening" / "fuzz" / "crashes" \
    / "mean"


@pytest.mark.parametrize("name, error, words", [
    ("attack-complex.npy", surgery.FileError, "not real numbers"),
    ("attack-empty-plane.npy", surgery.ShapeError, "holds no values"),
    ("attack-nan.npy", surgery.ShapeError, "NaN or infinite")])
def test_means_that_cannot_mean_a_mean_are_refused_typed(name, error, words):
    """A complex mean lost its imaginary part with only a warning, an empty
    plane ended in numpy's untyped ValueError, a NaN mean went into every
    input."""
    with pytest.raises(error, match=words):
        surgery.preprocess.as_mean(MEAN_CRASHES / name, (3, 8, 8))


def test_mean_arrays_follow_the_same_rules():
    for mean, words in ((np.array([1 + 2j, 3, 4]), "complex"), (np.zeros((3, 0, 2)), "no values"),
                        (np.array([1.0, np.inf, 2.0]), "NaN or infinite")):
        with pytest.raises(surgery.ShapeError, match=words):
            surgery.preprocess.as_mean(mean, (3, 8, 8))
