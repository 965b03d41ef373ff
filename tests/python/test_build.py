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


def _recipe_copy(tmp_path):
    recipe = tmp_path / "caffe"
    shutil.copytree(REPO / "third_party/caffe", recipe)
    return recipe


@pytest.mark.parametrize("variant, folder", [("cpu", "patches"), ("cuda", "patches/cuda")])
def test_a_patch_the_series_does_not_list_stops_the_build(tmp_path, variant, folder):
    # Applied by glob it would change libcaffe unseen (or in the wrong order).
    recipe = _recipe_copy(tmp_path)
    (recipe / folder / "0099-stray.patch").write_text("")
    result = _run_recipe(recipe, tmp_path, variant)
    assert result.returncode == 1, result.stderr
    assert "0099-stray.patch is in" in result.stderr
    assert "not in its series file" in result.stderr
    assert not (tmp_path / "cache").exists()  # stopped before fetching anything


def test_a_listed_patch_that_is_missing_stops_the_build(tmp_path):
    # Skipped by glob, libcaffe would silently lose that fix.
    recipe = _recipe_copy(tmp_path)
    listed = [line for line in (recipe / "patches/series").read_text().splitlines()
              if line and not line.startswith("#")]
    (recipe / "patches" / listed[4]).unlink()
    result = _run_recipe(recipe, tmp_path, "cpu")
    assert result.returncode == 1, result.stderr
    assert f"lists {listed[4]}, which is not there" in result.stderr
    assert not (tmp_path / "cache").exists()


def _run_recipe(recipe, tmp_path, variant):
    # CUDACXX: any program passes the cuda variant's nvcc lookup, which comes
    # before the series are read.
    env = {**os.environ, "CAFFE_SURGERY_VARIANT": variant, "CUDACXX": "true",
           "CAFFE_SURGERY_CACHE": str(tmp_path / "cache")}
    return subprocess.run(["bash", str(recipe / "build.sh")], env=env,
                          capture_output=True, text=True, timeout=120)


def _stock_recipe_copy(tmp_path):
    """third_party's caffe and caffe-stock side by side, as the stock recipe
    finds the patched one."""
    for name in ("caffe", "caffe-stock"):
        shutil.copytree(REPO / "third_party" / name, tmp_path / "third_party" / name)
    return tmp_path / "third_party" / "caffe-stock"


def test_the_stock_recipe_builds_only_the_cpu_variant(tmp_path):
    # Its series holds no CUDA fixes: a cuda build would not compile.
    result = subprocess.run(["bash", str(REPO / "third_party/caffe-stock/build.sh")],
                            env={**os.environ, "CAFFE_SURGERY_VARIANT": "cuda",
                                 "CAFFE_SURGERY_CACHE": str(tmp_path / "cache")},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "only the cpu variant has a stock build" in result.stderr
    assert not (tmp_path / "cache").exists()


def test_the_stock_recipe_stops_at_a_patch_the_recipe_does_not_have(tmp_path):
    # The stock series names patches of third_party/caffe/patches; a stale
    # name must stop the build, not build without that fix.
    stock = _stock_recipe_copy(tmp_path)
    with open(stock / "series", "a") as series:
        series.write("0099-gone.patch\n")
    result = subprocess.run(["bash", str(stock / "build.sh")],
                            env={**os.environ, "CAFFE_SURGERY_CACHE": str(tmp_path / "cache")},
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 1, result.stderr
    assert "series lists 0099-gone.patch, which ../caffe/patches does not have" in result.stderr
    assert not (tmp_path / "cache" / "stock" / "libcaffe").exists()  # stopped before fetching
