"""The build finds a Caffe the user points it at, instead of building one."""

import os
import pathlib
import shutil
import subprocess

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.mark.skipif(shutil.which("cmake") is None or shutil.which("protoc") is None,
                    reason="cmake or protoc not on PATH: Caffe's build dependencies are missing")
def test_configure_uses_caffe_dir(tmp_path):
    # The recipe prints its (cached) install prefix; any Caffe install tree would do.
    recipe = subprocess.run(["bash", str(REPO / "third_party/caffe/build.sh")],
                            capture_output=True, text=True)
    if recipe.returncode != 0 and "fetching" in recipe.stderr:
        # An offline machine without the recipe's cache (the GPU machine).
        pytest.skip("the recipe cannot fetch Caffe's source here: " + recipe.stderr[-200:])
    assert recipe.returncode == 0, recipe.stderr
    prefix = recipe.stdout.strip()
    caffe_dir = pathlib.Path(prefix) / "lib/cmake/Caffe"
    result = subprocess.run(
        ["cmake", "-S", str(REPO), "-B", str(tmp_path / "build"), f"-DCaffe_DIR={caffe_dir}"],
        capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert f"Caffe: {caffe_dir}" in result.stdout
    assert "building or reusing the cached libcaffe" not in result.stdout


def test_unknown_variant_is_refused(tmp_path):
    # Only cpu and cuda exist; a typo must not silently build the cpu variant.
    result = subprocess.run(["bash", str(REPO / "third_party/caffe/build.sh")],
                            env={**os.environ, "CAFFE_SURGERY_VARIANT": "gpu",
                                 "CAFFE_SURGERY_CACHE": str(tmp_path / "cache")},
                            capture_output=True, text=True)
    assert result.returncode == 2
    assert "must be cpu or cuda" in result.stderr
    assert not (tmp_path / "cache").exists()
