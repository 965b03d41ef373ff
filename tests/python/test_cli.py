"""The caffe-surgery command, run as a user would: the installed
executable, on batches with bad members, and its usage errors."""

import csv
import json
import os
import pathlib
import shutil
import subprocess
import sys

import numpy as np
import pytest
import skimage.io

import surgery
from conftest import fixture
from surgery import overlay
from surgery.cli import csv_cell, parser
from test_atomic_files import special_target
from test_files import snapshot

# The console script pip installed beside this interpreter, or (an install
# with pip --target, as on the GPU machine) the one on PATH.
EXECUTABLE = pathlib.Path(sys.executable).parent / "caffe-surgery"
if not EXECUTABLE.exists():
    EXECUTABLE = pathlib.Path(shutil.which("caffe-surgery") or EXECUTABLE)


def cli(*args, **options):
    """The command's result; `options` go to subprocess.run (cwd, timeout)."""
    return subprocess.run([str(EXECUTABLE), *map(str, args)], capture_output=True, text=True,
                          **options)


@pytest.mark.slow
def test_demo_command_finds_every_pasted_digit(tmp_path):
    """The demo, run once in the suite, as a user runs it."""
    result = subprocess.run([sys.executable, "-m", "surgery.cli", "demo"], cwd=tmp_path,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "6/6 pasted digits found at their place; 0 other detections" in result.stdout
    scale = overlay.layout(92, 156)
    assert skimage.io.imread(tmp_path / "dense_digits.png").shape == (
        92 * scale + overlay.CAPTION_PX, 156 * scale + overlay.BAR_PX, 4)


def test_convert_trained_lenet(tmp_path, lenet, mnist):
    result = cli("convert", *lenet, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "ip1 (InnerProduct 500x800) -> ip1-conv (Convolution 4x4" in result.stdout
    assert "28x28 window at stride 4x4" in result.stdout
    # The files written are the net: reloaded, each cell of a 36x36 input
    # is the original classifier on the 28x28 window at stride 4 there.
    written = surgery.Net(tmp_path / "lenet_full_conv.prototxt",
                          tmp_path / "lenet_iter_10000_full_conv.caffemodel")
    images, _ = mnist
    canvas = np.zeros((1, 1, 36, 36), np.float32)
    canvas[0, 0, 3:31, 5:33] = images[0] * 0.00390625
    cells = written.forward(data=canvas)["prob"]
    assert cells.shape == (1, 10, 3, 3)
    original = surgery.Net(*lenet)
    for i in range(3):
        for j in range(3):
            crop = canvas[:, :, 4 * i:4 * i + 28, 4 * j:4 * j + 28]
            np.testing.assert_allclose(cells[0, :, i, j], original.forward(data=crop)["prob"][0],
                                       rtol=1e-5, atol=1e-6)


def test_convert_reports_the_seed_full_conv_caffenets_227_window(tmp_path):
    """Already fully convolutional (input 451): nothing to convert, and the
    report gives 227x227 windows at stride 32, saying how that was chosen."""
    seed = fixture("bvlc_caffenet_full_conv", "bvlc_caffenet_full_conv.prototxt")
    result = cli("convert", seed, "-o", tmp_path)
    assert result.returncode == 0, result.stderr
    assert "nothing to convert" in result.stdout
    assert "each output cell = one 227x227 window at stride 32x32" in result.stdout
    assert "exact-fit rule's guess" in result.stdout and "--window H,W" in result.stdout


def test_convert_definition_only(tmp_path):
    deploy = fixture("bvlc_alexnet", "deploy.prototxt")
    result = cli("convert", deploy, "-o", tmp_path, "--keep-names")
    assert result.returncode == 0, result.stderr
    assert "fc6 (InnerProduct 4096x9216) -> fc6 (Convolution 6x6" in result.stdout
    assert not list(tmp_path.glob("*.caffemodel"))


def one_error_line(result):
    assert result.returncode == 2, (result.stdout, result.stderr)
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("caffe-surgery: error: "), result.stderr
    assert result.stdout == ""
    return lines[0]


def test_errors_are_one_line_and_exit_2(tmp_path):
    assert "absent.prototxt" in one_error_line(
        cli("convert", tmp_path / "absent.prototxt", "-o", tmp_path))
    (tmp_path / "file").write_text("x")
    assert "is a file" in one_error_line(cli("convert", tmp_path / "absent.prototxt", "-o",
                                             tmp_path / "file"))


DIGITS = ["t10k_00000_label7.png", "t10k_00001_label2.png", "t10k_00002_label1.png"]


@pytest.fixture
def batch(tmp_path):
    """A folder of three digits and one corrupt image."""
    folder = tmp_path / "in"
    folder.mkdir()
    for name in DIGITS:
        shutil.copy(fixture("mnist_t10k", "digits", name), folder / name)
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    return folder


def test_a_batch_survives_a_corrupt_image_and_a_missing_path(lenet, batch, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    result = cli("dense", *lenet, batch, tmp_path / "missing.png", "--raw-scale", "0.99609375",
                 "--json", out / "d.json", "--csv", out / "d.csv", "--picture", f"{out}/")
    assert result.returncode == 1, result.stderr
    # stderr holds the on-the-fly conversion's report and, for each error,
    # one line: nothing else (no traceback, no continuation line).
    report = str(surgery.fully_convolutionalize(surgery.Net(*lenet))).splitlines()
    errors = [line for line in result.stderr.splitlines() if line not in report]
    assert len(errors) == 2, result.stderr
    assert errors[0].startswith(f"caffe-surgery: error: {batch / 'corrupt.png'}: ")
    assert "not a format Pillow reads" in errors[0] and "BufferedReader" not in errors[0]
    assert errors[1].startswith(f"caffe-surgery: error: {tmp_path / 'missing.png'}: ")
    assert "3 of 5 images processed, 2 failed" in result.stdout
    records = json.loads((out / "d.json").read_text())
    assert sorted((pathlib.Path(r["image"]).name, r["label"]) for r in records) == sorted(
        (name, name[-5]) for name in DIGITS)
    for r in records:  # a 28 x 28 digit is one cell: its window is the image
        assert (r["x0"], r["y0"], r["x1"], r["y1"]) == (0, 0, 28, 28)
    with open(out / "d.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [(row["image"], row["label"]) for row in rows] == [
        (r["image"], str(r["label"])) for r in records]
    # Pictures are named after each image's stem.
    assert sorted(p.name for p in out.glob("*.png")) == sorted(DIGITS)


def test_images_of_one_size_run_as_one_forward_with_the_one_by_one_results(
        lenet, batch, tmp_path):
    """--batch-size: the three digits go through one forward; the records
    equal those of --batch-size 1 (scores to float rounding). A corrupt image
    in a batch sends that batch back to one by one, costing only itself."""
    from surgery.cli import _dense_maps
    digits = [str(batch / name) for name in DIGITS]
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    options = dict(preprocess=surgery.Preprocess(raw_scale=0.99609375))
    before = net.forward_count
    together = _dense_maps(net, digits, options)
    assert net.forward_count == before + 1
    alone = [surgery.dense_forward(net, d, **options) for d in digits]
    for a, b in zip(together, alone):
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5, atol=1e-7)
    mixed = _dense_maps(net, [digits[0], str(batch / "corrupt.png"), digits[1]], options)
    assert isinstance(mixed[1], surgery.SurgeryError)
    np.testing.assert_allclose(mixed[2].scores, alone[1].scores, rtol=1e-5, atol=1e-7)

    runs = {}
    for size in (1, 8):
        out = tmp_path / f"batch{size}.json"
        result = cli("dense", *lenet, *digits, "--raw-scale", "0.99609375",
                     "--batch-size", size, "--json", out)
        assert result.returncode == 0, result.stderr
        runs[size] = json.loads(out.read_text())
    assert len(runs[1]) == len(runs[8]) == 3
    for one, many in zip(runs[1], runs[8]):
        assert one.pop("score") == pytest.approx(many.pop("score"), rel=1e-5)
        assert one == many


def test_window_overrides_the_nets(lenet, batch, tmp_path):
    """--window H,W: each cell stands for a window of that size (here one
    cell, so the detection's box is the window given, x1 = W, y1 = H)."""
    out = tmp_path / "d.json"
    result = cli("dense", *lenet, batch / DIGITS[0], "--raw-scale", "0.99609375",
                 "--window", "20,24", "--json", out)
    assert result.returncode == 0, result.stderr
    [record] = json.loads(out.read_text())
    assert (record["x0"], record["y0"], record["x1"], record["y1"]) == (0, 0, 24, 20)


def test_globs_expand_to_images(lenet, batch):
    result = cli("dense", *lenet, batch / "t10k_0000[01]*.png", "--raw-scale", "0.99609375")
    assert result.returncode == 0, result.stderr
    assert "2 of 2 images processed" in result.stdout


@pytest.mark.parametrize("args, message", [
    (["--mean", "foo.npy"], "foo.npy"),
    (["--mean", "104 117 123"], "3 values, the net takes 1 channels"),
    (["--json", "/nonexistent/folder/d.json"], "does not exist"),
    (["--picture", "/nonexistent/folder/p.png"], "does not exist"),
    (["--picture", "p.gif"], "picture format"),
    # --top is gone: classes are ranked by what was detected.
    (["--top", "-2"], "unrecognized arguments"),
    (["--top", "0"], "unrecognized arguments"),
    (["--threshold", "x"], "'x' is not a number"),
    (["--threshold", "nan"], "not a finite number"),
    (["--raw-scale", "inf"], "not a finite number"),
    (["--nms", "2"], "not in 0..1"),
    (["--window", "0,5"], "window"),
    (["--class", "12"], "outside 0..9"),
])
def test_usage_errors_come_before_any_computation(lenet, batch, tmp_path, args, message):
    result = cli("dense", *lenet, batch / DIGITS[0], *args)
    line = one_error_line(result)
    assert message in line, line


def test_labels_count_is_checked_first(lenet, batch, tmp_path):
    labels = tmp_path / "labels.txt"
    labels.write_text("header\n" + "\n".join(str(d) for d in range(10)) + "\n")
    assert "header" in one_error_line(cli("dense", *lenet, batch / DIGITS[0], "--labels", labels))


def test_version_and_python_m_surgery():
    version = cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("caffe-surgery ")
    run = subprocess.run([sys.executable, "-m", "surgery", "--version"], capture_output=True,
                         text=True)
    assert run.returncode == 0 and run.stdout == version.stdout


def test_every_argument_has_help():
    def actions(p):
        for action in p._actions:
            if action.choices and hasattr(action.choices, "items"):
                for sub in action.choices.values():
                    yield from actions(sub)
            elif action.dest not in ("help", "version", "command"):
                yield action
    missing = [a.dest for a in actions(parser()) if not a.help]
    assert not missing, missing


# --- outputs never take an input's or a special file's place ----------------

@pytest.fixture
def model(lenet, tmp_path):
    """LeNet copied into tmp_path, writable as a user's own files are: a run
    that wrongly wrote over the model writes over the copy, never over the
    shared fixture."""
    folder = tmp_path / "model"
    folder.mkdir()
    copies = tuple(pathlib.Path(shutil.copy(path, folder / path.name)) for path in lenet)
    for copy in copies:
        copy.chmod(0o644)
    return copies


def test_pictures_into_the_input_folder_never_replace_the_inputs(model, batch):
    before = snapshot(*batch.iterdir())
    line = one_error_line(cli("dense", *model, batch, "--picture", f"{batch}/"))
    assert "which is input image" in line and str(batch) in line, line
    assert snapshot(*batch.iterdir()) == before


@pytest.mark.parametrize("flag, victim", [
    ("--json", "prototxt"), ("--json", "weights"), ("--json", "image"), ("--json", "mean"),
    ("--json", "labels"), ("--csv", "weights"), ("--picture", "image")])
def test_an_output_naming_an_input_is_refused_before_any_work(model, batch, tmp_path, flag,
                                                               victim):
    mean, labels = tmp_path / "mean.npy", tmp_path / "labels.txt"
    np.save(mean, np.zeros((1, 28, 28), np.float32))
    labels.write_text("\n".join(str(d) for d in range(10)) + "\n")
    image = batch / DIGITS[0]
    inputs = {"prototxt": model[0], "weights": model[1], "image": image, "mean": mean,
              "labels": labels}
    before = snapshot(*inputs.values())
    line = one_error_line(cli("dense", *model, image, "--mean", mean, "--labels", labels,
                              "--raw-scale", "0.99609375", flag, inputs[victim]))
    assert f"which is {'input image' if victim == 'image' else 'the ' + victim}" in line, line
    assert snapshot(*inputs.values()) == before


def test_two_outputs_in_one_file_are_refused(model, batch, tmp_path):
    out = tmp_path / "d.txt"
    line = one_error_line(cli("dense", *model, batch / DIGITS[0], "--json", out, "--csv", out))
    assert "--json writes too" in line, line
    assert not out.exists()


@pytest.mark.parametrize("flag", ["--json", "--csv", "--picture"])
@pytest.mark.parametrize("kind", ["fifo", "link to /dev/null", "dangling link"])
def test_outputs_never_replace_what_is_not_a_regular_file(model, batch, tmp_path, flag, kind):
    victim = special_target(tmp_path, kind, "victim.png")
    null = os.stat("/dev/null")
    before = snapshot(victim)
    line = one_error_line(cli("dense", *model, batch / DIGITS[0], flag, victim, timeout=120))
    assert "victim.png" in line, line
    assert snapshot(victim) == before
    after = os.stat("/dev/null")
    assert (after.st_mode, after.st_ino, after.st_rdev) == (null.st_mode, null.st_ino,
                                                            null.st_rdev)


def test_the_demos_two_pictures_may_not_be_one_file(tmp_path):
    png = tmp_path / "d.png"
    line = one_error_line(cli("demo", "--png", png, "--stride", "2", "--stride-png", png))
    assert "--png writes too" in line, line
    assert not png.exists()


def test_a_labels_fifo_is_refused_at_once(model, batch, tmp_path):
    """The old reader waited for a writer forever; the timeout bounds it."""
    fifo = tmp_path / "labels.txt"
    os.mkfifo(fifo)
    line = one_error_line(cli("dense", *model, batch / DIGITS[0], "--labels", fifo,
                              timeout=60))
    assert "labels" in line and "FIFO" in line, line


def test_csv_cells_a_spreadsheet_would_run_are_neutralised(model, batch, tmp_path):
    shutil.copy(batch / DIGITS[0], tmp_path / "+cmd.png")  # a 7
    names = [str(d) for d in range(10)]
    names[7] = '=HYPERLINK("http://example.com/x")'
    (tmp_path / "labels.txt").write_text("\n".join(names) + "\n")
    result = cli("dense", *model, "+cmd.png", "--raw-scale", "0.99609375", "--labels",
                 "labels.txt", "--csv", "d.csv", "--json", "d.json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    [record] = json.loads((tmp_path / "d.json").read_text())
    assert (record["image"], record["label"]) == ("+cmd.png", names[7])  # JSON: as they are
    with open(tmp_path / "d.csv", newline="") as f:
        [row] = csv.DictReader(f)
    assert (row["image"], row["label"]) == ("'+cmd.png", "'" + names[7])
    assert (row["class"], row["x1"], row["score"]) == ("7", "28", str(record["score"]))


def test_only_text_that_starts_a_formula_is_quoted():
    cells = [-3, -2.5, "-3", "+4.5e2", "-2+3", "@SUM(A1)", "\tx", "\rx", "=1", "plain", "a=b"]
    assert [csv_cell(c) for c in cells] == [
        -3, -2.5, "-3", "+4.5e2", "'-2+3", "'@SUM(A1)", "'\tx", "'\rx", "'=1", "plain", "a=b"]


@pytest.mark.parametrize("error", [MemoryError(), MemoryError("Unable to allocate 6.7 GiB")])
def test_an_image_out_of_memory_costs_only_itself(lenet, batch, monkeypatch, capsys, error):
    """A MemoryError from an allocation no check foresaw, in the middle
    image's forward: one line on stderr, the image after it still runs, and
    the exit status is 1, as for any failed image."""
    from surgery import cli as command
    digits = [str(batch / name) for name in DIGITS]
    real = command.dense_forward

    def forward(net, image, **options):
        if digits[1] in (image if isinstance(image, list) else [image]):
            raise error
        return real(net, image, **options)

    monkeypatch.setattr(command, "dense_forward", forward)
    code = command.main(["dense", *map(str, lenet), *digits, "--raw-scale", "0.99609375"])
    out, err = capsys.readouterr()
    assert code == 1 and "Traceback" not in err
    assert [line for line in err.splitlines() if line.startswith("caffe-surgery: error")] == [
        f"caffe-surgery: error: {digits[1]}: {str(error) or 'MemoryError'}"]
    assert [line.split()[0] for line in out.splitlines() if line.startswith("/")] == \
        [digits[0] + ":", digits[2] + ":"]
    assert out.splitlines()[-1] == "2 of 3 images processed, 1 failed"


def test_an_image_over_the_memory_limit_costs_only_itself(lenet, batch, tmp_path):
    """A real refusal: a GIF whose first frame (4000 x 4000) would take 1 GiB
    to decode and preprocess, under a limit of 256 MiB beside the nets."""
    from test_images import gif_bomb
    from test_files import run_isolated
    big = tmp_path / "big.gif"
    gif_bomb(big, 2, 4000, 4000)
    digits = [str(batch / name) for name in DIGITS[:2]]
    report = tmp_path / "report.json"

    def case():
        import contextlib
        import io
        from surgery import cli as command
        surgery.set_memory_limit(surgery.memory_in_use() + (256 << 20))
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = command.main(["dense", *map(str, lenet), digits[0], str(big), digits[1],
                                 "--raw-scale", "0.99609375"])
        report.write_text(json.dumps({"code": code, "out": out.getvalue(),
                                      "err": err.getvalue()}))
    outcome = run_isolated(case, timeout=120)
    assert outcome.kind == "ok", outcome
    result = json.loads(report.read_text())
    assert result["code"] == 1
    errors = [line for line in result["err"].splitlines() if "error" in line]
    assert len(errors) == 1 and errors[0].startswith(f"caffe-surgery: error: {big}: ")
    assert "memory limit" in errors[0] and "big.gif" in errors[0]
    assert "2 of 3 images processed, 1 failed" in result["out"]
