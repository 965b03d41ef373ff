"""Files read and written: hostile caffemodels and non-regular files refused
in a child process (a crash fails the test, not the suite), saves that keep
what they replace safe (checked byte for byte and by mode), pairs that never
load as a silent mix, and surgery that refuses before it edits anything."""

import hashlib
import os
import pathlib
import resource
import signal
import stat
import struct
import sys

import numpy as np
import pytest

import surgery
from conftest import TINY_NET

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))
from forkrun import run_isolated  # noqa: E402


def varint(v):
    out = bytearray()
    while v >= 0x80:
        out.append((v & 0x7F) | 0x80)
        v >>= 7
    out.append(v)
    return bytes(out)


def message(field, payload):
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def fc_layer(data, dims=(2, 9)):
    """The tiny net's fc layer: weights blob (data given, shape dims), bias."""
    shape = message(7, message(1, b"".join(varint(d) for d in dims)))
    weights = message(5, data) + shape
    bias = message(5, struct.pack("<2f", 1, 1)) + message(7, message(1, varint(2)))
    return message(100, message(1, b"fc") + message(2, b"InnerProduct") +
                   message(7, weights) + message(7, bias))


def snapshot(*paths):
    """Bytes and st_mode of each path (None if absent)."""
    out = {}
    for path in paths:
        path = pathlib.Path(path)
        if path.exists() or path.is_symlink():
            st = os.lstat(path)
            out[path] = (path.read_bytes() if stat.S_ISREG(st.st_mode) else None, st.st_mode)
        else:
            out[path] = None
    return out


def memory_mib(field):
    """VmHWM (peak) or VmRSS of this process, in MiB."""
    for line in pathlib.Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise AssertionError(f"no {field}")


def reset_peak_rss():
    pathlib.Path("/proc/self/clear_refs").write_text("5")  # VmHWM := VmRSS


def refused_in_child(case, error=surgery.SurgeryError):
    """Runs `case` in a forked child: it must raise `error` (by class name)."""
    outcome = run_isolated(case)
    assert outcome.kind == "error", outcome
    assert outcome.detail == error.__name__, outcome
    return outcome.message


# --- the caffemodel reader ------------------------------------------------

def test_float_data_three_bytes_past_the_blob(tiny_prototxt, tmp_path, loader):
    model = tmp_path / "m.caffemodel"
    model.write_bytes(fc_layer(struct.pack("<18f", *range(18)) + b"AAA"))
    text = refused_in_child(lambda: loader.net(tiny_prototxt, model), surgery.ParseError)
    assert "m.caffemodel" in text and "whole number" in text


def test_length_prefix_of_two_gigabytes_in_45_bytes(tiny_prototxt, tmp_path, loader):
    model = tmp_path / "m.caffemodel"
    model.write_bytes((varint(100 << 3 | 2) + varint(1 << 31) + message(1, b"fc")).ljust(45, b"x"))
    text = refused_in_child(lambda: loader.net(tiny_prototxt, model), surgery.ParseError)
    assert "2147483648 bytes" in text


@pytest.mark.parametrize("dims", [(-1, -18), (1 << 32, 18), (2**31 - 1, 2**31 - 1, 4)])
def test_shape_out_of_range(tiny_prototxt, tmp_path, dims, loader):
    model = tmp_path / "m.caffemodel"
    model.write_bytes(fc_layer(struct.pack("<18f", *range(18)),
                               tuple(d & (2**64 - 1) for d in dims)))
    refused_in_child(lambda: loader.net(tiny_prototxt, model), surgery.ParseError)

    def general():
        loader.weights(loader.net(tiny_prototxt), model)
    refused_in_child(general, surgery.ParseError)


@pytest.mark.parametrize("path", ["/dev/zero", "fifo", "folder"])
def test_not_a_regular_file_refused_before_reading(tiny_prototxt, tmp_path, path, loader):
    if path == "fifo":
        os.mkfifo(tmp_path / path)
    elif path == "folder":
        (tmp_path / path).mkdir()
    target = path if path.startswith("/") else tmp_path / path

    def case():
        reset_peak_rss()
        start = memory_mib("VmRSS")
        for load in (lambda: loader.net(target), lambda: loader.net(tiny_prototxt, target)):
            try:
                load()
            except surgery.FileError as error:
                assert "not a" in str(error) and "refused before reading" in str(error), error
            else:
                raise AssertionError("loaded")
        grown = memory_mib("VmHWM") - start
        assert grown < 64, f"peak RSS grew by {grown:.0f} MiB"  # nothing was read
    outcome = run_isolated(case)
    assert outcome.kind == "ok", outcome


def test_nul_in_a_path_refused(tiny_prototxt):
    with pytest.raises(surgery.FileError, match="NUL"):
        surgery.Net(str(tiny_prototxt) + "\0.ignored")


def test_paths_that_are_not_utf8_are_taken_as_open_takes_them(tmp_path, tiny_prototxt):
    """A file name that is not UTF-8 arrives as Python holds it: a str with
    surrogate escapes (os.fsdecode), bytes, or a pathlib.Path; each reaches
    the file it names, for reading and for writing, and a message quoting
    one is printable text."""
    folder = os.fsencode(tmp_path)
    raw = folder + b"/\xff-net.prototxt"
    with open(raw, "wb") as f:
        f.write(pathlib.Path(tiny_prototxt).read_bytes())
    for path in (os.fsdecode(raw), raw, pathlib.Path(os.fsdecode(raw))):
        net = surgery.Net(path)
    net.params["fc"][0][...] = np.arange(18, dtype=np.float32).reshape(2, 9)
    net.save(os.fsdecode(folder + b"/\xfe.prototxt"), folder + b"/\xfe.caffemodel")
    assert sorted(n for n in os.listdir(folder) if n.startswith(b"\xfe")) == [
        b"\xfe.caffemodel", b"\xfe.prototxt"]
    again = surgery.Net(folder + b"/\xfe.prototxt", os.fsdecode(folder + b"/\xfe.caffemodel"))
    np.testing.assert_array_equal(again.params["fc"][0], net.params["fc"][0])
    again.load_weights(pathlib.Path(os.fsdecode(folder + b"/\xfe.caffemodel")))

    absent = os.fsdecode(folder + b"/\xfd-absent.prototxt")
    for call in (lambda: surgery.Net(absent), lambda: surgery._core.read_mean_file(absent)):
        with pytest.raises(surgery.FileError) as error:
            call()
        assert "\\xfd-absent.prototxt" in str(error.value), error.value
        str(error.value).encode("utf-8")  # printable: no lone surrogates
    with pytest.raises(TypeError):
        surgery.Net(12.5)


def test_huge_prototxt_refused_before_reading(tmp_path, loader):
    path = tmp_path / "huge.prototxt"
    with open(path, "wb") as f:
        f.truncate((64 << 20) + 1)  # sparse: no disk, no time

    def case():
        loader.net(path)
    text = refused_in_child(case, surgery.FileError)
    assert "64 MiB" in text


# --- saves ----------------------------------------------------------------

@pytest.fixture
def net(tiny_prototxt):
    return surgery.Net(tiny_prototxt)


def test_fifo_and_directory_targets_refused(net, tmp_path):
    fifo, folder, link = tmp_path / "f.caffemodel", tmp_path / "d.prototxt", tmp_path / "l.caffemodel"
    os.mkfifo(fifo)
    folder.mkdir()
    link.symlink_to(fifo)
    before = snapshot(fifo, folder, link)
    for kwargs in ({"weights": fifo}, {"prototxt": folder}, {"weights": link},
                   {"prototxt": tmp_path / "ok.prototxt", "weights": fifo}):
        with pytest.raises(surgery.FileError, match="not a regular file"):
            net.save(**kwargs)
    assert snapshot(fifo, folder, link) == before
    assert not (tmp_path / "ok.prototxt").exists()
    assert not [p for p in tmp_path.iterdir() if ".tmp." in p.name]


def test_mode_kept_and_symlink_written_through(net, tmp_path):
    model = tmp_path / "m.caffemodel"
    model.write_bytes(b"old")
    model.chmod(0o600)
    net.save(weights=model)
    assert stat.S_IMODE(model.stat().st_mode) == 0o600 and model.read_bytes() != b"old"
    real, link = tmp_path / "real.prototxt", tmp_path / "link.prototxt"
    real.write_text("old")
    real.chmod(0o640)
    link.symlink_to(real)
    net.save(prototxt=link)
    assert link.is_symlink() and os.readlink(link) == str(real)
    assert "InnerProduct" in real.read_text()
    assert stat.S_IMODE(real.stat().st_mode) == 0o640


def test_read_only_target_refused(net, tmp_path):
    locked = tmp_path / "locked.caffemodel"
    locked.write_bytes(b"keep me")
    locked.chmod(0o444)
    before = snapshot(locked)
    with pytest.raises(surgery.FileError, match="read-only"):
        net.save(weights=locked)
    assert snapshot(locked) == before


def test_save_guards(net, tiny_prototxt, tmp_path):
    before = snapshot(tiny_prototxt)
    with pytest.raises(surgery.SurgeryError, match="no file"):
        net.save()
    with pytest.raises(surgery.SurgeryError, match="swapped"):
        net.save(weights=tmp_path / "w.prototxt")
    with pytest.raises(surgery.SurgeryError, match="swapped"):
        net.save(tmp_path / "p.caffemodel")
    with pytest.raises(surgery.FileError, match="same file"):
        net.save(tmp_path / "x", tmp_path / "x")
    with pytest.raises(surgery.FileError, match="overwrite=True"):
        net.save(tiny_prototxt)
    assert snapshot(tiny_prototxt) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [tiny_prototxt.name]
    net.save(tiny_prototxt, overwrite=True)
    assert surgery.Net(tiny_prototxt).layers == net.layers


def test_weights_source_not_overwritten(net, tmp_path, tiny_prototxt):
    model = tmp_path / "m.caffemodel"
    net.save(weights=model)
    loaded = surgery.Net(tiny_prototxt, model)
    before = snapshot(model)
    with pytest.raises(surgery.FileError, match="loaded from"):
        loaded.save(weights=model)
    assert snapshot(model) == before


def test_convert_outputs_equal_to_each_other_or_an_input(tmp_path):
    proto = tmp_path / "tiny.prototxt"
    proto.write_text(TINY_NET)
    net = surgery.Net(proto)
    p, w = tmp_path / "in.prototxt", tmp_path / "in.caffemodel"
    net.save(p, w)
    before = snapshot(p, w)
    out = tmp_path / "out"
    with pytest.raises(surgery.SurgeryError, match="same file"):
        surgery.fully_convolutionalize(p, w, out, out)
    live = surgery.Net(p, w)
    with pytest.raises(surgery.SurgeryError, match="overwrite"):
        surgery.fully_convolutionalize(live, out_prototxt=live.source)
    assert snapshot(p, w) == before and not out.exists()


def fill(net, value):
    for blobs in net.params.values():
        for blob in blobs:
            blob[...] = value


def test_mixed_pair_refuses_to_load(net, tmp_path):
    proto, model = tmp_path / "pair.prototxt", tmp_path / "pair.caffemodel"
    fill(net, 1.0)
    net.save(proto, model)
    old_model = model.read_bytes()
    assert proto.read_text().startswith("# caffe-surgery pair: weights pair.caffemodel bytes ")
    fill(net, 2.0)
    net.save(proto, model)
    assert surgery.Net(proto, model).params["fc"][0].flat[0] == 2.0
    # What a kill between the two renames leaves: the new prototxt (renamed
    # first), the old caffemodel. hardening/kill_during_save.py kills real saves.
    model.write_bytes(old_model)
    with pytest.raises(surgery.ParseError, match=r"pair\.prototxt.*pair\.caffemodel.*mixed"):
        surgery.Net(proto, model)
    # The same weights under another name: a deliberate choice, loaded.
    other = tmp_path / "other.caffemodel"
    other.write_bytes(old_model)
    assert surgery.Net(proto, other).params["fc"][0].flat[0] == 1.0


# Blobs of several MB: their data goes between the file and the blob directly,
# in pieces, hashed on the digest's thread.
WIDE_NET = """
layer { name: "data" type: "Input" top: "data" input_param { shape { dim: 1 dim: 3 dim: 32 dim: 32 } } }
layer { name: "fc1" type: "InnerProduct" bottom: "data" top: "fc1" inner_product_param { num_output: 1500 } }
layer { name: "fc2" type: "InnerProduct" bottom: "fc1" top: "fc2" inner_product_param { num_output: 10 } }
"""


def wide_net(tmp_path):
    proto = tmp_path / "wide.prototxt"
    proto.write_text(WIDE_NET)
    net = surgery.Net(proto)
    random = np.random.default_rng(3)
    for blobs in net.params.values():
        for blob in blobs:
            blob[...] = random.standard_normal(blob.shape)
    return net


def test_pair_records_the_sha256_of_large_blobs_and_loads_them(tmp_path):
    net = wide_net(tmp_path)
    proto, model = tmp_path / "pair.prototxt", tmp_path / "pair.caffemodel"
    net.save(proto, model)
    data = model.read_bytes()
    assert len(data) > 16 << 20
    assert proto.read_text().splitlines()[0].endswith(
        f" bytes {len(data)} sha256 {hashlib.sha256(data).hexdigest()}")
    loaded = surgery.Net(proto, model)  # checks the digest it reads against the record
    for name, blobs in net.params.items():
        for saved, got in zip(blobs, loaded.params[name]):
            np.testing.assert_array_equal(got, saved)


def test_full_disk_during_a_large_save_keeps_the_old_files(tmp_path):
    net = wide_net(tmp_path)
    proto, model = tmp_path / "pair.prototxt", tmp_path / "pair.caffemodel"
    proto.write_text("old")
    model.write_bytes(b"old")

    def case():
        # The file-size limit fails a write() past 8 MB as a full disk would
        # (EFBIG), in the middle of the first large blob.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (8 << 20, 8 << 20))
        net.save(proto, model)

    outcome = run_isolated(case)
    assert (outcome.kind, outcome.detail) == ("error", "FileError"), outcome
    assert "pair.caffemodel" in outcome.message and "too large" in outcome.message
    assert proto.read_text() == "old" and model.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pair.caffemodel", "pair.prototxt",
                                                          "wide.prototxt"]


@pytest.mark.slow
def test_kill_during_pair_saves_never_loads_a_silent_mix():
    from kill_during_save import pair_kill_trials
    outcomes = pair_kill_trials(6, seed=5)
    assert outcomes["silent mix / corrupt"] == 0, outcomes
    assert sum(outcomes.values()) == 6


# --- surgery all or nothing -------------------------------------------------

DUPLICATE = """
name: "dup"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 4 dim: 4 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 2 kernel_size: 2 } }
layer { name: "pool" type: "Pooling" bottom: "conv" top: "pool"
        pooling_param { pool: AVE global_pooling: true } }
layer { name: "fc" type: "InnerProduct" bottom: "pool" top: "fc1"
        inner_product_param { num_output: 3 } }
layer { name: "fc" type: "InnerProduct" bottom: "fc1" top: "fc2"
        inner_product_param { num_output: 2 } }
"""


def state_of(net, folder, tag):
    path = folder / f"state-{tag}.prototxt"
    net.save(path)
    definition = path.read_bytes()
    path.unlink()
    params = {name: [blob.copy() for blob in blobs] for name, blobs in net.params.items()}
    return definition, params, {name: blob.shape for name, blob in net.blobs.items()}


def test_duplicate_layer_names_refused_before_any_edit(tmp_path):
    proto = tmp_path / "dup.prototxt"
    proto.write_text(DUPLICATE)
    try:
        net = surgery.Net(proto)
    except surgery.NetDefinitionError as error:  # a load policy may refuse it first
        assert "'fc'" in str(error)
        return
    rng = np.random.default_rng(0)
    for blobs in net.params.values():
        for blob in blobs:
            blob[...] = rng.standard_normal(blob.shape)
    definition, params, shapes = state_of(net, tmp_path, "before")
    out_p, out_w = tmp_path / "out.prototxt", tmp_path / "out.caffemodel"
    with pytest.raises(surgery.NetDefinitionError, match="two layers are named 'fc'"):
        surgery.fully_convolutionalize(net, out_prototxt=out_p, out_weights=out_w)
    with pytest.raises(surgery.NetDefinitionError, match="'fc'"):
        surgery.fully_convolutionalize(net, input_shape=(1, 1, 8, 8))  # reshapes, then refuses
    after_definition, after_params, after_shapes = state_of(net, tmp_path, "after")
    assert after_definition == definition
    assert after_shapes == shapes  # input_shape was undone too
    assert params.keys() == after_params.keys()
    for name in params:
        for a, b in zip(params[name], after_params[name]):
            np.testing.assert_array_equal(a, b)
    assert not out_p.exists() and not out_w.exists()


def test_new_name_that_exists_refused(tmp_path):
    proto = tmp_path / "clash.prototxt"
    proto.write_text(TINY_NET + 'layer { name: "fc-conv" type: "ReLU" bottom: "fc" top: "r" }\n')
    net = surgery.Net(proto)
    definition, params, _ = state_of(net, tmp_path, "before")
    with pytest.raises(surgery.NetDefinitionError, match="'fc-conv'.*another suffix"):
        surgery.fully_convolutionalize(net)
    after_definition, after_params, _ = state_of(net, tmp_path, "after")
    assert after_definition == definition
    for name in params:
        for a, b in zip(params[name], after_params[name]):
            np.testing.assert_array_equal(a, b)
