"""The caffe-surgery command, run as a user would: the installed
executable, on batches with bad members, and its usage errors."""

import csv
import json
import os
import pathlib
import re
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
    (["--nms-iou", "2"], "not in 0..1"),
    (["--nms", "0.3"], "invalid choice"),
    (["--window", "0,5"], "window"),
    (["--class", "12"], "outside 0..9"),
    (["--channel-swap", "2,1"], "an order of channels such as (2, 1, 0), not [2, 1]"),
    (["--channel-swap", "1,0"], "--channel-swap 1,0 orders 2 channels, the net takes 1"),
    (["--channel-swap", "2,1,0"], "orders 3 channels, the net takes 1"),
    (["--size", "20,30"], "--size 20,30 is smaller than the net's smallest input, 25,25"),
    (["--threshold", "2"], "--threshold 2 is outside 0..1, where the net's output 'prob'"),
    (["--threshold", "-0.5"], "outside 0..1"),
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


# --- what a person at a terminal sees ----------------------------------------

def cli_on_terminal(*args, tmp_path, delay="0", timeout=120):
    """The command run with stderr on a pseudo-terminal, as in a shell, and
    stdout into a file: (exit code, stdout, what the terminal showed).
    `delay`: $SURGERY_PROGRESS_DELAY (None: unset, the default 2 s)."""
    import fcntl
    import pty
    import select
    import struct
    import termios
    import time
    env = {k: v for k, v in os.environ.items() if k != "SURGERY_PROGRESS_DELAY"}
    if delay is not None:
        env["SURGERY_PROGRESS_DELAY"] = delay
    master, terminal = pty.openpty()
    # A terminal has a size (a bare pseudo-terminal's is 0x0, where tqdm draws nothing).
    # Wide: the bar names the image by its path (pytest's are long), and tqdm
    # cuts a bar that does not fit before its unit.
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 300, 0, 0))
    stdout = tmp_path / "stdout.txt"
    with open(stdout, "wb") as out:
        child = subprocess.Popen([str(EXECUTABLE), *map(str, args)], stdin=subprocess.DEVNULL,
                                 stdout=out, stderr=terminal, env=env)
    os.close(terminal)
    shown, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            if select.select([master], [], [], 1)[0]:
                try:
                    data = os.read(master, 1 << 16)
                except OSError:  # EIO: the child closed the terminal
                    break
                if not data:
                    break
                shown += data
            elif child.poll() is not None:
                break
        code = child.wait(timeout=max(1, deadline - time.monotonic()))
    finally:
        if child.poll() is None:
            child.kill()
        os.close(master)
    return code, stdout.read_text(), shown.decode(errors="replace")


@pytest.fixture
def tiled_canvas(tmp_path, mnist):
    """An 80x80 canvas with one digit, run in 48x48 tiles: several tiles."""
    images, _ = mnist
    canvas = np.zeros((80, 80), np.uint8)
    canvas[20:48, 30:58] = images[0]
    path = tmp_path / "canvas.png"
    skimage.io.imsave(path, canvas, check_contrast=False)
    return path


TILE_BAR = re.compile(r"\d+/\d+ \[.*tile")


def test_a_tiled_image_shows_its_tiles_progress_on_a_terminal_only(lenet, tiled_canvas,
                                                                    tmp_path):
    args = ("dense", *lenet, tiled_canvas, "--tile", "48,48", "--raw-scale", "0.99609375")
    code, out, shown = cli_on_terminal(*args, tmp_path=tmp_path)
    assert code == 0, shown
    assert TILE_BAR.search(shown), shown
    assert re.search(r"  7 \[7\]: \d+ \(best 1\.0000\)", out) and not TILE_BAR.search(out)
    piped = cli(*args, env={**os.environ, "SURGERY_PROGRESS_DELAY": "0"})
    assert piped.returncode == 0, piped.stderr
    assert not TILE_BAR.search(piped.stderr) and "\r" not in piped.stderr
    assert piped.stdout == out
    code, quiet_out, shown = cli_on_terminal(*args, "--quiet", tmp_path=tmp_path)
    assert code == 0 and shown == "" and quiet_out == ""


LAYER_BAR = re.compile(r"\d+layer \[")


def test_an_image_run_whole_shows_its_layers_progress_on_a_terminal_only(lenet, tiled_canvas,
                                                                         tmp_path):
    """One image, no tiles: the bar counts the layers of its forward."""
    args = ("dense", *lenet, tiled_canvas, "--raw-scale", "0.99609375")
    code, out, shown = cli_on_terminal(*args, tmp_path=tmp_path)
    assert code == 0, shown
    assert LAYER_BAR.search(shown), shown
    piped = cli(*args, env={**os.environ, "SURGERY_PROGRESS_DELAY": "0"})
    assert piped.returncode == 0 and not LAYER_BAR.search(piped.stderr), piped.stderr
    assert piped.stdout == out


def test_an_error_in_the_step_between_layers_stops_the_forward_and_leaves_the_net_usable(lenet):
    net = surgery.Net(*lenet)
    x = np.zeros((1, 1, 28, 28), np.float32)
    steps = []

    def step():
        steps.append(1)
        if len(steps) == 3:
            raise RuntimeError("stop here")

    with pytest.raises(RuntimeError, match="stop here"):
        net.forward_stepped({"data": x}, step)
    assert len(steps) == 3
    counted = []
    np.testing.assert_array_equal(net.forward_stepped({"data": x}, lambda: counted.append(1))["prob"],
                                  net.forward(data=x)["prob"])
    assert len(counted) == len(net.layer_times)


def test_a_batch_shows_its_images_progress_unless_shorter_than_the_delay(lenet, batch, tmp_path):
    digits = [batch / name for name in DIGITS]
    args = ("dense", *lenet, *digits, "--raw-scale", "0.99609375")
    code, out, shown = cli_on_terminal(*args, tmp_path=tmp_path)
    assert code == 0, shown
    assert re.search(r"\d/3 \[.*image", shown), shown
    assert "3 of 3 images processed" in out
    # A run shorter than the delay shows no bar at all.
    code, _, shown = cli_on_terminal(*args, tmp_path=tmp_path, delay="3600")
    assert code == 0 and not re.search(r"\d/3 \[", shown), shown


@pytest.mark.parametrize("value, delay", [("0", 0.0), ("0.5", 0.5), ("-1", 2.0),
                                          ("soon", 2.0), ("nan", 2.0), ("inf", 2.0)])
def test_the_progress_delay_setting(monkeypatch, value, delay):
    from surgery.progress import progress_delay
    monkeypatch.setenv("SURGERY_PROGRESS_DELAY", value)
    assert progress_delay() == delay


def test_the_grid_is_printed_for_small_maps_or_on_request(lenet, tmp_path, mnist):
    """A 160x160 canvas gives a 34x34 map: its grid (34 lines) only with
    --grid; a digit's 1x1 map prints its grid unasked. The grid printed is
    the map's argmax."""
    images, _ = mnist
    canvas = np.zeros((160, 160), np.uint8)
    canvas[60:88, 60:88] = images[0]
    skimage.io.imsave(tmp_path / "canvas.png", canvas, check_contrast=False)
    args = ("dense", *lenet, tmp_path / "canvas.png", "--raw-scale", "0.99609375")
    plain = cli(*args)
    assert plain.returncode == 0, plain.stderr
    assert "-> 34x34 map" in plain.stdout and "best class per cell" not in plain.stdout
    assert len(plain.stdout.splitlines()) < 34
    asked = cli(*args, "--grid")
    lines = asked.stdout.splitlines()
    start = lines.index("best class per cell:") + 1
    net = surgery.Net(*lenet)
    surgery.fully_convolutionalize(net)
    dense = surgery.dense_forward(net, tmp_path / "canvas.png",
                                  preprocess=surgery.Preprocess(raw_scale=0.99609375))
    grid = np.array([line.split() for line in lines[start:start + 34]], int)
    np.testing.assert_array_equal(grid, dense.argmax)
    small = cli("dense", *lenet, fixture("mnist_t10k", "digits", DIGITS[0]),
                "--raw-scale", "0.99609375")
    assert "best class per cell:\n  7\n" in small.stdout


def test_quiet_prints_only_errors_and_the_summary(lenet, batch, tmp_path):
    out = tmp_path / "d.json"
    result = cli("dense", *lenet, batch, "--raw-scale", "0.99609375", "--quiet", "--json", out)
    assert result.returncode == 1
    assert result.stdout == "3 of 4 images processed, 1 failed\n"
    [error] = result.stderr.splitlines()
    assert error.startswith(f"caffe-surgery: error: {batch / 'corrupt.png'}: ")
    assert len(json.loads(out.read_text())) == 3


def test_a_mean_for_0_255_on_0_1_images_is_one_warning_per_run(lenet, batch):
    digits = [batch / name for name in DIGITS]
    result = cli("dense", *lenet, *digits, "--mean", "33", "--batch-size", "1")
    assert result.returncode == 0, result.stderr
    warned = [line for line in result.stderr.splitlines() if "warning" in line]
    assert len(warned) == 1, result.stderr
    assert warned[0].startswith("caffe-surgery: warning: the mean is on a 0..255 scale")
    assert "--raw-scale 255" in warned[0]
    fitting = cli("dense", *lenet, *digits, "--mean", "33", "--raw-scale", "255")
    assert fitting.returncode == 0 and "warning" not in fitting.stderr, fitting.stderr


# A 3-channel classifier small enough to build in a test: 12x12 input.
COLOUR_NET = """
name: "colour"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 3 dim: 12 dim: 12 } } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "conv"
        convolution_param { num_output: 4 kernel_size: 5 weight_filler { type: "xavier" } } }
layer { name: "fc" type: "InnerProduct" bottom: "conv" top: "fc"
        inner_product_param { num_output: 3 weight_filler { type: "xavier" } } }
layer { name: "prob" type: "Softmax" bottom: "fc" top: "prob" }
"""


def test_a_preset_is_its_settings_given_one_by_one(tmp_path):
    from surgery.testing import random_model
    (tmp_path / "colour.prototxt").write_text(COLOUR_NET)
    model = random_model(tmp_path / "colour.prototxt", tmp_path, seed=2)
    image = tmp_path / "photo.png"
    rng = np.random.default_rng(4)
    skimage.io.imsave(image, rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    runs = {}
    for name, flags in (("preset", ["--preset", "vgg"]),
                        ("flags", ["--mean", "103.939,116.779,123.68", "--channel-swap",
                                   "2,1,0", "--raw-scale", "255"]),
                        ("plain", [])):
        out = tmp_path / f"{name}.json"
        result = cli("dense", *model, image, *flags, "--threshold", "0", "--json", out)
        assert result.returncode == 0, result.stderr
        runs[name] = json.loads(out.read_text())
    assert runs["preset"] == runs["flags"] and runs["preset"] != runs["plain"]
    # An option given replaces the preset's value (here, wrongly).
    result = cli("dense", *model, image, "--preset", "vgg", "--raw-scale", "1")
    assert "caffe-surgery: warning: the mean is on a 0..255 scale" in result.stderr
