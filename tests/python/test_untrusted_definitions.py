"""Loading a prototxt from anywhere: no file touched, no crash, no secret in a
message. Each case runs in a forked child (hardening/forkrun.py), so a crash
or an abort fails its test instead of the suite; victims are checked byte for
byte and by mode afterwards."""

import os
import pathlib
import stat
import subprocess
import sys

import pytest

import surgery

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2] / "hardening"))
from forkrun import run_isolated  # noqa: E402

SECRET = "hunter2-secret-word"


def load(tmp_path, text, net=surgery.Net, **options):
    path = tmp_path / "untrusted.prototxt"
    path.write_text(text)
    return run_isolated(lambda: net(path, **options))


def snapshot(root: pathlib.Path):
    """Every path under root (root included) with its mode and bytes."""
    found = {}
    for path in [root, *sorted(root.rglob("*"))] if root.is_dir() else [root]:
        info = path.lstat()
        found[str(path)] = (stat.S_IMODE(info.st_mode), stat.S_IFMT(info.st_mode),
                            path.read_bytes() if path.is_file() else None)
    return found


def secret_file(tmp_path, name="secret.txt"):
    path = tmp_path / name
    path.write_text(f"{SECRET} 10 10\n{SECRET} 20 20\n")
    return path


def assert_refused(outcome, *needles):
    assert outcome.kind == "error", outcome
    assert outcome.detail == "NetDefinitionError", outcome
    for needle in needles:
        assert needle in outcome.message, outcome.message
    assert SECRET not in outcome.message


INPUT = 'layer {{ name: "{0}" type: "Input" top: "{0}" input_param {{ shape {{ {1} }} }} }}\n'


def inputs(**shapes):
    return "".join(INPUT.format(name, " ".join(f"dim: {d}" for d in dims))
                   for name, dims in shapes.items())


# SSD's DetectionOutput: 2 priors, 2 classes.
DETECTION_INPUTS = inputs(loc=(1, 8), conf=(1, 4), prior=(1, 2, 8))
DETECTION = """layer {{ name: "det" type: "DetectionOutput"
  bottom: "loc" bottom: "conf" bottom: "prior" top: "out"
  detection_output_param {{ num_classes: 2 nms_param {{ nms_threshold: 0.45 }}
    {0} }} }}"""


@pytest.fixture
def victim_dir(tmp_path):
    victim = tmp_path / "victim"
    (victim / "sub").mkdir(parents=True)
    (victim / "precious.txt").write_bytes(b"precious bytes\x00\x01")
    (victim / "sub" / "deep.bin").write_bytes(os.urandom(64))
    os.chmod(victim / "precious.txt", 0o640)
    os.chmod(victim / "sub", 0o750)
    return victim


def test_detection_output_directory_is_refused_and_left_alone(tmp_path, victim_dir, loader):
    before = snapshot(victim_dir)
    outcome = load(tmp_path, DETECTION_INPUTS + DETECTION.format(
        f'save_output_param {{ output_directory: "{victim_dir}" }}'), loader.net)
    assert_refused(outcome, "untrusted.prototxt", "'det'", "DetectionOutput", "output_directory",
                   "trust_io_layers")
    assert snapshot(victim_dir) == before


def test_caffe_surgery_info_leaves_the_victim_folder_alone(tmp_path, victim_dir):
    before = snapshot(victim_dir)
    path = tmp_path / "untrusted.prototxt"
    path.write_text(DETECTION_INPUTS + DETECTION.format(
        f'save_output_param {{ output_directory: "{victim_dir}" }}'))
    result = subprocess.run([sys.executable, "-m", "surgery.cli", "info", str(path)],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0 and result.returncode > 0, result
    assert "output_directory" in result.stderr
    assert snapshot(victim_dir) == before


def test_detection_output_without_file_fields_is_constructed(tmp_path):
    # The field is refused, not the type: SSD's inference layer still loads.
    assert load(tmp_path, DETECTION_INPUTS + DETECTION.format("")).kind == "ok"


def test_hdf5_output_does_not_truncate_its_file(tmp_path, loader):
    victim = tmp_path / "victim.h5"
    victim.write_bytes(b"not an hdf5 file, but mine" * 10)
    os.chmod(victim, 0o600)
    before = snapshot(victim)
    outcome = load(tmp_path, inputs(data=(1, 2), label=(1, 1)) + f"""
layer {{ name: "save" type: "HDF5Output" bottom: "data" bottom: "label"
  hdf5_output_param {{ file_name: "{victim}" }} }}""", loader.net)
    assert_refused(outcome, "'save'", "HDF5Output", "trust_io_layers")
    assert snapshot(victim) == before


READERS = {
    "HDF5Data": lambda s: f"""layer {{ name: "reader" type: "HDF5Data" top: "data"
        hdf5_data_param {{ source: "{s}" batch_size: 1 }} }}""",
    "ImageData": lambda s: f"""layer {{ name: "reader" type: "ImageData" top: "data" top: "label"
        image_data_param {{ source: "{s}" batch_size: 1 }} }}""",
    "WindowData": lambda s: f"""layer {{ name: "reader" type: "WindowData" top: "data" top: "label"
        window_data_param {{ source: "{s}" batch_size: 1 }} }}""",
    "MemoryData": lambda s: f"""layer {{ name: "reader" type: "MemoryData" top: "data" top: "label"
        transform_param {{ mean_file: "{s}" }}
        memory_data_param {{ batch_size: 1 channels: 1 height: 2 width: 2 }} }}""",
    "InfogainLoss": lambda s: inputs(score=(2, 3), label=(2,)) + f"""
        layer {{ name: "reader" type: "InfogainLoss" bottom: "score" bottom: "label" top: "loss"
        infogain_loss_param {{ source: "{s}" }} }}""",
    "DetectionOutput.label_map_file": lambda s: DETECTION_INPUTS + DETECTION.format(
        f'save_output_param {{ label_map_file: "{s}" }}').replace('"det"', '"reader"'),
    "DetectionOutput.name_size_file": lambda s: DETECTION_INPUTS + DETECTION.format(
        f'save_output_param {{ name_size_file: "{s}" }}').replace('"det"', '"reader"'),
    "DetectionEvaluate": lambda s: inputs(det=(1, 1, 1, 7), gt=(1, 1, 1, 8)) + f"""
        layer {{ name: "reader" type: "DetectionEvaluate" bottom: "det" bottom: "gt" top: "out"
        detection_evaluate_param {{ num_classes: 2 name_size_file: "{s}" }} }}""",
}


@pytest.mark.parametrize("reader", sorted(READERS))
def test_layers_that_read_files_are_refused_without_quoting_them(tmp_path, reader, loader):
    secret = secret_file(tmp_path)
    outcome = load(tmp_path, READERS[reader](secret), loader.net)
    assert_refused(outcome, "'reader'", reader.split(".")[0])
    assert secret.read_text().startswith(SECRET)


CRASHERS = {
    # Caffe checks `stride` but divides by stride_h/stride_w.
    "stride_h 0": inputs(data=(1, 1, 8, 8)) + """layer { name: "bad" type: "Convolution"
        bottom: "data" top: "out" convolution_param { num_output: 1 kernel_size: 3
        stride_h: 0 stride_w: 1 } }""",
    "pooling stride_w missing": inputs(data=(1, 1, 8, 8)) + """layer { name: "bad"
        type: "Pooling" bottom: "data" top: "out" pooling_param { kernel_size: 2 stride_h: 2 } }""",
    "group 0": inputs(data=(1, 2, 8, 8)) + """layer { name: "bad" type: "Convolution"
        bottom: "data" top: "out" convolution_param { num_output: 2 kernel_size: 3 group: 0 } }""",
    "pooling stride 0": inputs(data=(1, 1, 8, 8)) + """layer { name: "bad" type: "Pooling"
        bottom: "data" top: "out" pooling_param { kernel_size: 2 stride: 0 } }""",
    "pooling stride_h 0": inputs(data=(1, 1, 8, 8)) + """layer { name: "bad" type: "Pooling"
        bottom: "data" top: "out" pooling_param { kernel_size: 2 stride_h: 0 stride_w: 1 } }""",
    "PixelShuffle default factor": inputs(data=(1, 4, 2, 2)) + """layer { name: "bad"
        type: "PixelShuffle" bottom: "data" top: "out" }""",
    "PixelShuffle without bottom": """layer { name: "bad" type: "PixelShuffle" top: "out"
        pixelshuffle_param { upscale_factor: 2 } }""",
    "Upsample without bottom": """layer { name: "bad" type: "Upsample" top: "out" }""",
    "Upsample on 2 axes": inputs(data=(1, 4)) + """layer { name: "bad" type: "Upsample"
        bottom: "data" top: "out" upsample_param { scale: 2 } }""",
    "Convolution without bottom": """layer { name: "bad" type: "Convolution" top: "out"
        convolution_param { num_output: 1 kernel_size: 1 } }""",
    "BilinearInterpolate without a size": inputs(data=(1, 1, 4, 4)) + """layer { name: "bad"
        type: "BilinearInterpolate" bottom: "data" top: "out" }""",
    "kernel above 2^31": inputs(data=(1, 1, 8, 8)) + """layer { name: "bad" type: "Convolution"
        bottom: "data" top: "out" convolution_param { num_output: 1 kernel_size: 4294967295 } }""",
}


@pytest.mark.parametrize("case", sorted(CRASHERS))
def test_parameters_that_crash_caffe_raise_a_typed_error(tmp_path, case, loader):
    outcome = load(tmp_path, CRASHERS[case], loader.net)
    assert_refused(outcome, "untrusted.prototxt", "'bad'")


@pytest.mark.parametrize("name", [r"caf\377", r"a\000b"])
def test_names_that_are_not_clean_utf8_are_refused(tmp_path, name):
    outcome = load(tmp_path, f"""layer {{ name: "{name}" type: "Input" top: "data"
        input_param {{ shape {{ dim: 1 }} }} }}""")
    assert_refused(outcome, "not valid UTF-8")


def test_blob_name_that_is_not_utf8_is_refused(tmp_path):
    outcome = load(tmp_path, r"""layer { name: "in" type: "Input" top: "d\303\050"
        input_param { shape { dim: 1 } } }""")
    assert_refused(outcome, "top", r"\xC3")


def test_trust_io_layers_constructs_a_refused_io_layer(tmp_path):
    target = tmp_path / "written.h5"
    text = inputs(data=(1, 2), label=(1, 1)) + f"""
layer {{ name: "save" type: "HDF5Output" bottom: "data" bottom: "label"
  hdf5_output_param {{ file_name: "{target}" }} }}"""
    assert load(tmp_path, text).kind == "error"
    assert not target.exists()
    assert load(tmp_path, text, trust_io_layers=True).kind == "ok"
    assert target.read_bytes().startswith(b"\x89HDF")  # Caffe created it


def test_python_layers_stay_refused_when_io_is_trusted(tmp_path):
    outcome = load(tmp_path, inputs(data=(1,)) + """layer { name: "py" type: "Python"
        bottom: "data" top: "out" python_param { module: "os" layer: "system" } }""",
                   trust_io_layers=True)
    assert_refused(outcome, "'py'", "arbitrary code")
