"""Many images on a 2-worker Dask LocalCluster: the same maps as a serial
loop, a killed worker loses nothing, a killed run restarts where it was."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import skimage.io
import pytest

import surgery
from surgery.map_store import load_map

pytest.importorskip("distributed")
from surgery.dask_batch import dense_images, local_cluster  # noqa: E402

COUNT = 40


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    from PIL import Image
    folder = tmp_path_factory.mktemp("images")
    rng = np.random.default_rng(0)
    for k in range(COUNT):
        size = (int(rng.integers(150, 260)), int(rng.integers(150, 260)))
        Image.fromarray(rng.integers(0, 256, size, dtype=np.uint8)).save(folder / f"{k:02d}.png")
    return folder


@pytest.fixture(scope="module")
def serial(lenet, images):
    """The oracle: a serial loop in this process."""
    net = surgery.fully_convolutionalize(*lenet).net
    return {p.name: surgery.dense_forward(net, str(p)).scores for p in sorted(images.iterdir())}


@pytest.fixture(scope="module")
def client():
    from distributed import Client
    with local_cluster(2) as cluster, Client(cluster) as client:
        yield client


def records(out):
    """Each finished image's record, by image file name."""
    return {p.parent.name[:-len(".result")]: json.loads(p.read_text())
            for p in out.glob("*.result/record.json")}


def record_path(out, name):
    return out / f"{name}.result" / "record.json"


def hidden(out):
    """Temporaries left anywhere in `out`."""
    return [str(p) for p in out.rglob(".*")]


def assert_equal_to_serial(out, serial):
    for name, expected in serial.items():
        scores, meta = load_map(out / f"{name}.result" / "map.npy")
        assert meta["image"].endswith(name)
        assert np.abs(np.asarray(scores) - expected).max() <= 1e-5


@pytest.mark.slow
def test_folder_on_two_workers_equals_the_serial_loop(lenet, images, serial, tmp_path):
    out = tmp_path / "out"
    summary = dense_images(*lenet, sorted(images.iterdir()), out, workers=2)
    assert len(summary.done) == COUNT and not summary.failed and not summary.skipped
    assert_equal_to_serial(out, serial)
    assert len({r["worker_pid"] for r in records(out).values()}) == 2
    assert not hidden(out)


@pytest.mark.slow
def test_a_killed_worker_loses_no_image(lenet, images, serial, client, tmp_path):
    out = tmp_path / "out"
    pids = client.run(os.getpid)
    victim = next(iter(pids.values()))
    result = {}
    run = threading.Thread(target=lambda: result.update(summary=dense_images(
        *lenet, sorted(images.iterdir()), out, client=client, tile=64)))
    run.start()
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and not any(
            r["worker_pid"] == victim for r in (records(out) if out.exists() else {}).values()):
        time.sleep(0.01)
    os.kill(victim, signal.SIGKILL)  # once it has finished an image, mid-run
    run.join(timeout=300)
    summary = result["summary"]
    assert len(summary.done) == COUNT and not summary.failed, str(summary)
    assert_equal_to_serial(out, serial)
    by = [r["worker_pid"] for r in records(out).values()]
    # The run went on after the kill: on the survivor, and on the worker
    # the nanny started in the victim's place.
    assert 0 < by.count(victim) < COUNT
    assert set(by) - set(pids.values()), "the nanny's new worker ran no image"


@pytest.mark.slow
def test_a_killed_run_restarts_with_the_unfinished_images_only(lenet, images, serial, tmp_path):
    out = tmp_path / "out"
    command = [sys.executable, "-m", "surgery", "dense", str(lenet[0]), str(lenet[1]),
               str(images), "--out", str(out), "--workers", "2", "--tile", "48"]
    first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             start_new_session=True)
    deadline = time.monotonic() + 240
    while len(records(out) if out.exists() else {}) < 8 and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(first.pid, signal.SIGKILL)  # the CLI and its cluster's processes
    first.communicate()
    before = records(out)
    finished = len(before)
    assert 8 <= finished < COUNT, "the first run ended before it could be killed"
    stamps = {n: record_path(out, n).stat().st_mtime_ns for n in before}
    second = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stderr[-3000:]
    assert (f"{COUNT} images: {COUNT - finished} processed, {finished} reused from an earlier "
            "run with the same model and settings, 0 failed") in second.stdout
    assert all(record_path(out, n).stat().st_mtime_ns == t for n, t in stamps.items())
    assert_equal_to_serial(out, serial)
    assert not hidden(out)


def test_a_bad_image_is_a_failure_with_its_reason(lenet, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "bad.png").write_bytes(b"not a png")
    np.save(folder / "good.npy", np.zeros((60, 60), np.uint8))
    summary = dense_images(*lenet, [folder / "bad.png", folder / "good.npy"], tmp_path / "out",
                           workers=1)
    assert [os.path.basename(i) for i in summary.done] == ["good.npy"]
    assert "bad.png" in next(iter(summary.failed)) and "cannot read" in str(summary)


@pytest.mark.slow
def test_an_embedded_cluster_leaves_this_process_environment_as_it_was(lenet, monkeypatch,
                                                                      tmp_path):
    # Dask's nanny writes OPENBLAS_NUM_THREADS=1 (and more) into the process
    # that spawns its workers; a Caffe run started later from here (the
    # plain-Caffe baseline) would then round its GEMMs differently.
    names = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "MALLOC_TRIM_THRESHOLD_")
    for name in names:
        monkeypatch.delenv(name, raising=False)
    before = dict(os.environ)
    from distributed import Client
    with local_cluster(2) as cluster, Client(cluster) as client:
        assert dict(os.environ) == before
        split = str(max(1, (os.cpu_count() or 1) // 2))
        assert set(client.run(os.getenv, "OPENBLAS_NUM_THREADS").values()) == {split}
        # Both pools in each worker: BLAS and libcaffe's loops (patch 0009).
        counts = client.run(surgery.thread_counts).values()
        assert all(c["blas"] == int(split) and c["caffe"] in (0, int(split)) for c in counts)
    np.save(tmp_path / "a.npy", np.zeros((60, 60), np.uint8))
    summary = dense_images(*lenet, [tmp_path / "a.npy"], tmp_path / "out", workers=1)
    assert len(summary.done) == 1
    assert dict(os.environ) == before


def test_workers_without_an_output_folder_is_a_usage_error(lenet, images, capsys):
    from surgery.cli import main
    assert main(["dense", str(lenet[0]), str(lenet[1]), str(images), "--workers", "2"]) == 2
    assert "--out FOLDER" in capsys.readouterr().err


def snapshot(folder):
    """Bytes and mode of every file directly in `folder`."""
    return {p.name: (p.read_bytes(), p.stat().st_mode) for p in folder.iterdir() if p.is_file()}


def cli_run(lenet, folder, *extra):
    command = [sys.executable, "-m", "surgery", "dense", str(lenet[0]), str(lenet[1]),
               str(folder), "--out", str(folder), "--workers", "1", *extra]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


@pytest.mark.slow
def test_reruns_in_the_input_folder_reuse_exactly_what_is_still_valid(lenet, tmp_path):
    from PIL import Image
    folder = tmp_path / "photos"
    folder.mkdir()
    rng = np.random.default_rng(3)
    for name in ("a.png", "b.png", "c.png", "d.png"):
        Image.fromarray(rng.integers(0, 256, (60, 70), dtype=np.uint8)).save(folder / name)
    for name in ("x.npy", "x.npy.npy"):  # the second's name extends the first's map's
        np.save(folder / name, rng.integers(0, 256, (64, 60), dtype=np.uint8))
    inputs = snapshot(folder)
    net = surgery.fully_convolutionalize(*lenet).net
    serial = {name: surgery.dense_forward(net, str(folder / name)).scores for name in inputs}

    first = cli_run(lenet, folder)
    assert first.returncode == 0, first.stderr[-3000:]
    assert "6 images: 6 processed, 0 reused" in first.stdout
    assert snapshot(folder) == inputs and not hidden(folder)
    assert_equal_to_serial(folder, serial)

    # Records that are not records, or that would block or never end: redone.
    record_path(folder, "a.png").write_text("[]")
    record_path(folder, "b.png").write_text("null")
    record_path(folder, "c.png").write_text("[" * 100000)
    record_path(folder, "d.png").unlink()
    os.mkfifo(record_path(folder, "d.png"))
    record_path(folder, "x.npy").unlink()
    record_path(folder, "x.npy").symlink_to("/dev/zero")
    kept = record_path(folder, "x.npy.npy").read_bytes()
    second = cli_run(lenet, folder)
    assert second.returncode == 0, second.stderr[-3000:]
    assert ("6 images: 5 processed, 1 reused from an earlier run with the same model and "
            "settings, 0 failed") in second.stdout and "5 redone" in second.stdout
    assert record_path(folder, "x.npy.npy").read_bytes() == kept
    assert sorted(records(folder)) == sorted(inputs)
    assert snapshot(folder) == inputs and not hidden(folder)
    assert_equal_to_serial(folder, serial)

    # Other settings: refused before any work, naming what differs; nothing changed.
    before = {name: record_path(folder, name).read_bytes() for name in inputs}
    third = cli_run(lenet, folder, "--threshold", "0.9")
    assert third.returncode == 2 and third.stdout == ""
    assert third.stderr.count("\n") == 1 and "threshold was 0.5, now 0.9" in third.stderr
    assert "--overwrite" in third.stderr
    assert {name: record_path(folder, name).read_bytes() for name in inputs} == before

    fourth = cli_run(lenet, folder, "--threshold", "0.9", "--overwrite")
    assert fourth.returncode == 0, fourth.stderr[-3000:]
    assert "6 images: 6 processed, 0 reused" in fourth.stdout and "6 redone" in fourth.stdout
    assert {r["settings"]["threshold"] for r in records(folder).values()} == {0.9}
    assert snapshot(folder) == inputs and not hidden(folder)
    assert_equal_to_serial(folder, serial)


@pytest.mark.parametrize("address, why", [("bogus", "neither a Dask address"),
                                          ("tcp://127.0.0.1:9", "cannot reach the Dask scheduler")])
def test_a_bad_scheduler_is_one_line_before_the_output_folder(lenet, tmp_path, address, why):
    out = tmp_path / "out"
    env = {**os.environ, "DASK_DISTRIBUTED__COMM__TIMEOUTS__CONNECT": "1s"}
    run = subprocess.run([sys.executable, "-m", "surgery", "dense", str(lenet[0]),
                          str(lenet[1]), str(tmp_path), "--out", str(out), "--scheduler",
                          address], capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 2 and run.stderr.count("\n") == 1, run.stderr[-3000:]
    assert why in run.stderr and not out.exists()


@pytest.mark.slow
def test_out_with_json_csv_and_pictures_gives_the_serial_runs_files(lenet, tmp_path):
    """--out with --json, --csv and --picture: the records and pictures of
    the images finished there (now or before), equal to a serial run's; an
    image that failed has none. A rerun with other labels or another mean
    is refused, naming the image, the setting and --overwrite."""
    import shutil
    from surgery.testing import fixtures
    folder = tmp_path / "in"
    folder.mkdir()
    digits = ["t10k_00000_label7.png", "t10k_00001_label2.png", "t10k_00002_label1.png"]
    for name in digits:
        shutil.copy(fixtures() / "mnist_t10k" / "digits" / name, folder / name)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    base = [sys.executable, "-m", "surgery", "dense", str(lenet[0]), str(lenet[1]), str(folder),
            "--raw-scale", "0.99609375"]

    def run(name, *extra):
        files = tmp_path / name
        files.mkdir()
        result = subprocess.run(base + ["--json", str(files / "d.json"), "--csv",
                                        str(files / "d.csv"), "--picture", f"{files}/",
                                        *extra], capture_output=True, text=True, timeout=300)
        return result, files

    serial, expected = run("serial")
    assert serial.returncode == 1, serial.stderr[-3000:]
    out = tmp_path / "out"
    for attempt in ("first", "again"):
        result, files = run(attempt, "--out", str(out), "--workers", "1")
        assert result.returncode == 1, result.stderr[-3000:]
        reused = 0 if attempt == "first" else 3
        assert f"4 images: {3 - reused} processed, {reused} reused" in result.stdout
        assert "corrupt.png" in result.stdout  # the summary's failure line
        got, want = (json.loads((f / "d.json").read_text()) for f in (files, expected))
        assert [r.pop("score") for r in got] == pytest.approx([r.pop("score") for r in want],
                                                              rel=1e-5)
        assert got == want and len(got) == 3
        assert (files / "d.csv").read_text().splitlines()[0] == \
            (expected / "d.csv").read_text().splitlines()[0]
        assert sorted(p.name for p in files.glob("*.png")) == sorted(digits)
        for name in digits:
            picture = skimage.io.imread(files / name).astype(float)
            assert np.abs(picture - skimage.io.imread(expected / name)).mean() < 1.0

    labels = tmp_path / "labels.txt"
    labels.write_text("\n".join(f"digit {d}" for d in range(10)) + "\n")
    for extra, setting in ((["--labels", str(labels)], "labels was null"),
                           (["--mean", "0.5"], "preprocess.mean was null, now [0.5]")):
        refused = subprocess.run(base + ["--out", str(out), *extra], capture_output=True,
                                 text=True, timeout=300)
        assert refused.returncode == 2 and refused.stdout == "", refused.stderr[-3000:]
        assert setting in refused.stderr and "--overwrite" in refused.stderr
        assert "t10k_0000" in refused.stderr or "corrupt" in refused.stderr
