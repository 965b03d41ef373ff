"""Resume as a checked contract, without a cluster: records read only as
bounded regular files of the expected form, reused only for the same model,
settings and input; result names that cannot collide; clean-up that stays in
an image's own folder; scheduler addresses checked before anything is made."""

import fcntl
import json
import os
import pathlib
import sys

import numpy as np
import pytest

import surgery
from surgery.dask_batch import (RECORD_BYTES, check_inputs, make_job, plan, read_record,
                           result_folder, result_paths, run_image, scheduler_target)
from surgery.errors import BatchError, FileError

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))
from forkrun import run_isolated  # noqa: E402


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "in" / "a.npy"
    path.parent.mkdir()
    np.save(path, np.random.default_rng(1).integers(0, 256, (60, 60), dtype=np.uint8))
    return str(path)


@pytest.fixture
def finished(lenet, image, tmp_path):
    """A job and its image, finished by run_image: (job, image, record path)."""
    job = make_job(*lenet, tmp_path / "out")
    os.makedirs(job.out)
    assert "error" not in run_image(job, image)
    return job, image, result_paths(job, image)[1]


# --- read_record: what is not a record is refused, typed, naming the file ---

HOSTILE = {
    "a list": b"[]",
    "null": b"null",
    "a string": b'"record"',
    "deep nesting": b"[" * 200000 + b"]" * 200000,
    "not UTF-8": b'{"image": "\xff"}',
    "cut short": b'{"format": "caffe-surgery result 1", "image"',
    "no fields": b"{}",
}


@pytest.mark.parametrize("case", HOSTILE)
def test_what_is_not_a_record_is_refused_naming_the_file(case, tmp_path):
    path = tmp_path / "record.json"
    path.write_bytes(HOSTILE[case])
    with pytest.raises(FileError, match="record.json"):
        read_record(path)


def test_a_record_with_a_field_of_the_wrong_kind_is_refused(finished):
    _, _, path = finished
    good = json.loads(pathlib.Path(path).read_text())
    assert read_record(path) == good
    for field, value in (("tiles", True), ("map", "../../a.png"), ("input", "0" * 63),
                         ("detections", [1]), ("model", {"prototxt": 1, "weights": None})):
        pathlib.Path(path).write_text(json.dumps({**good, field: value}))
        with pytest.raises(FileError, match=f"field.*{field}"):
            read_record(path)


def test_a_fifo_record_is_refused_at_once(tmp_path):
    path = tmp_path / "record.json"
    os.mkfifo(path)
    outcome = run_isolated(lambda: read_record(path), timeout=10)
    assert (outcome.kind, outcome.detail) == ("error", "FileError"), outcome
    assert "not a regular file" in outcome.message


def status_kib(field):
    return next(int(line.split()[1]) for line in open("/proc/self/status")
                if line.startswith(field + ":"))


def read_with_peak(path):
    """In the child: read_record(path), its peak resident memory (VmHWM)
    checked to stay within 16 MiB of what the child held before."""
    pathlib.Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS
    before = status_kib("VmRSS")
    try:
        read_record(path)
    finally:
        assert status_kib("VmHWM") < before + 16 * 1024, (status_kib("VmHWM"), before)


def test_a_record_linked_to_dev_zero_or_too_large_is_refused_without_reading_it(tmp_path):
    (tmp_path / "zero.json").symlink_to("/dev/zero")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (64 * RECORD_BYTES) + b"{}")
    for path, why in ((tmp_path / "zero.json", "not a regular file"), (big, "more than")):
        outcome = run_isolated(lambda: read_with_peak(path), timeout=10)
        assert (outcome.kind, outcome.detail) == ("error", "FileError"), outcome
        assert why in outcome.message


# --- reuse only for the same model, settings and input ---

def test_a_finished_image_is_reused_and_an_unreadable_record_redone(lenet, finished):
    job, image, path = finished
    assert plan(job, [image], overwrite=False).reuse == [image]
    pathlib.Path(path).write_text("[]")
    work = plan(job, [image], overwrite=False)
    assert (work.reuse, work.todo, work.redo) == ([], [image], [image])
    assert "error" not in run_image(job, image)
    assert read_record(path)["settings"] == job.settings


def test_results_of_other_settings_model_or_input_refuse_the_run_unless_overwrite(
        lenet, finished, tmp_path):
    job, image, path = finished
    before = pathlib.Path(path).read_bytes()
    other_weights = tmp_path / "other.caffemodel"
    other_weights.write_bytes(pathlib.Path(lenet[1]).read_bytes() + b"\0")
    for other, why in ((make_job(*lenet, job.out, threshold=0.9), "threshold was 0.5, now 0.9"),
                       (make_job(*lenet, job.out, stride=2), "stride was null, now 2"),
                       (make_job(lenet[0], other_weights, job.out), r"model \(weights differs")):
        with pytest.raises(BatchError, match=why):
            plan(other, [image], overwrite=False)
        assert plan(other, [image], overwrite=True).redo == [image]
    # A long setting is shown cut short, with its count.
    names = [f"class number {k}" for k in range(10)]
    with pytest.raises(BatchError) as refused:
        plan(make_job(*lenet, job.out, labels=names), [image], overwrite=False)
    message = str(refused.value)
    assert 'labels was null, now ["class number 0", "class number 1", "class number 2", "c...' in message
    assert "(10 values)" in message and len(message) < 400
    np.save(image, np.zeros((60, 60), np.uint8))
    with pytest.raises(BatchError, match="another input"):
        plan(job, [image], overwrite=False)
    assert pathlib.Path(path).read_bytes() == before  # refusing touched nothing


def test_a_mean_file_is_a_setting_by_its_content(lenet, image, tmp_path):
    mean = tmp_path / "mean.npy"
    np.save(mean, np.zeros((1, 28, 28), np.float32))
    first = make_job(*lenet, tmp_path / "out", preprocess=surgery.Preprocess(mean=str(mean)))
    np.save(mean, np.ones((1, 28, 28), np.float32))
    again = make_job(*lenet, tmp_path / "out", preprocess=surgery.Preprocess(mean=str(mean)))
    assert again.settings != first.settings


# --- names that cannot collide, clean-up in one folder ---

def test_results_of_names_that_extend_each_other_stay_apart(lenet, tmp_path):
    job = make_job(*lenet, tmp_path)
    a, b = str(tmp_path / "x.npy"), str(tmp_path / "x.npy.npy")
    files = set(result_paths(job, a)) | {result_paths(job, a)[0] + ".json"}
    assert not files & (set(result_paths(job, b)) | {result_paths(job, b)[0] + ".json"})
    assert os.path.dirname(result_paths(job, a)[0]) != os.path.dirname(result_paths(job, b)[0])


@pytest.mark.parametrize("name, why", [("a.png.result", "reserved"),
                                       ("x.png.result/map.npy", "lies in a result folder")])
def test_inputs_that_would_collide_with_results_are_refused(tmp_path, name, why):
    with pytest.raises(BatchError, match=why):
        check_inputs(str(tmp_path), [str(tmp_path / name)])


def test_clean_up_stays_in_the_image_folder_and_spares_a_locked_one(lenet, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    rng = np.random.default_rng(2)
    for name in ("x.npy", "x.npy.npy"):
        np.save(folder / name, rng.integers(0, 256, (60, 60), dtype=np.uint8))
    job = make_job(*lenet, tmp_path / "out")
    os.makedirs(job.out)
    mine, other = str(folder / "x.npy"), str(folder / "x.npy.npy")
    # What a killed writer left for x.npy, and a live writer's temporary of
    # x.npy.npy, named as a prefix match from x.npy's map would find it.
    os.makedirs(result_folder(job, mine))
    left = pathlib.Path(result_paths(job, mine)[0]).with_name(".map.npy.abcd1234")
    left.write_bytes(b"partial")
    live_record = pathlib.Path(result_paths(job, other)[1])
    live_record.parent.mkdir(parents=True, exist_ok=True)
    live = live_record.with_name(f".{live_record.name}.abcd1234")
    live.write_bytes(b"being written")
    assert "error" not in run_image(job, mine)
    assert not left.exists() and live.read_bytes() == b"being written"
    # A folder another writer holds is left alone: the image fails, nothing is removed.
    fd = os.open(result_folder(job, other), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        report = run_image(job, other)
    finally:
        os.close(fd)
    assert "another run" in report["error"] and live.read_bytes() == b"being written"


def test_a_result_folder_that_is_a_symlink_is_not_written_through(lenet, image, tmp_path):
    job = make_job(*lenet, tmp_path / "out")
    os.makedirs(job.out)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "record.json").write_text("keep")
    os.symlink(elsewhere, result_folder(job, image))
    assert "not a folder" in run_image(job, image)["error"]
    assert [p.name for p in elsewhere.iterdir()] == ["record.json"]
    assert (elsewhere / "record.json").read_text() == "keep"


# --- the scheduler and the workers ---

@pytest.mark.parametrize("address", ["tcp://10.0.0.5:8786", "tls://host.example:8786",
                                     "ucx://10.0.0.5:13337", "inproc://10.0.0.5/1234/1",
                                     "tcp://[::1]:8786", "10.0.0.5:8786"])
def test_dask_addresses_are_taken(address):
    assert scheduler_target(address) == {"address": address}


@pytest.mark.parametrize("address", ["bogus", "tcp://", "tcp://host:99999", "http://host:80",
                                     "tcp://host:8786/../x", ""])
def test_what_is_no_address_nor_scheduler_file_is_refused_before_the_folder(lenet, image,
                                                                            tmp_path, address):
    from surgery.dask_batch import dense_images
    out = tmp_path / "new"
    with pytest.raises(BatchError, match="neither a Dask address"):
        dense_images(*lenet, [image], out, scheduler=address)
    assert not out.exists()


@pytest.mark.parametrize("bad", [{"workers": 0}, {"workers": -2}, {"workers": 1.5},
                                 {"map_suffix": ".png"}])
def test_bad_workers_or_map_format_are_refused_before_the_folder(lenet, image, tmp_path, bad):
    from surgery.dask_batch import dense_images
    out = tmp_path / "new"
    with pytest.raises(BatchError, match=next(iter(bad))):
        dense_images(*lenet, [image], out, **bad)
    assert not out.exists()


def test_an_unreachable_scheduler_is_one_typed_error_before_the_folder(lenet, image, tmp_path):
    pytest.importorskip("distributed")
    import dask
    from surgery.dask_batch import dense_images
    out = tmp_path / "new"
    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}), \
            pytest.raises(BatchError, match="cannot reach the Dask scheduler 'tcp://127.0.0.1:9'"):
        dense_images(*lenet, [image], out, scheduler="tcp://127.0.0.1:9")
    assert not out.exists()


def test_a_scheduler_file_is_taken(tmp_path):
    path = tmp_path / "scheduler.json"
    path.write_text('{"address": "tcp://10.0.0.5:8786"}')
    assert scheduler_target(str(path)) == {"scheduler_file": str(path)}
    assert surgery.BatchError is BatchError
