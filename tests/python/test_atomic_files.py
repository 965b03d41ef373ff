"""Files the package writes appear whole, by a rename, with the permissions
a plain open() gives a new file (not the temporary's private 0600), and a
failed write leaves nothing behind."""

import os
import stat

import numpy as np
import pytest

from surgery.atomic_files import replacing, write_bytes, write_text
from surgery.map_store import MapWriter


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def write_map(path):
    with MapWriter(str(path), (2, 3, 4), {}) as writer:
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
