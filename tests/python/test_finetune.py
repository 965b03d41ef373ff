"""Dense fine-tuning end to end, on cluttered MNIST canvases and the LeNet
fixture: bad input refused before anything is trained or written, the head
kept or rebuilt from the old rows, outputs that OpenCV loads and computes
alike, exact resume (also after Ctrl-C), and the proof that it learns."""

import os
import pathlib
import signal

import numpy as np
import pytest

import surgery
from conftest import opencv_caffe_reader
from digit_canvases import learning_sets, write_set
from surgery.errors import FileError, ParseError
from surgery.finetune import finetune, score_detector
from surgery.labels import BACKGROUND

QUICK = dict(iterations=6, snapshot_every=3, progress=False, crop=(60, 60))


@pytest.fixture(scope="module")
def canvases(tmp_path_factory, mnist):
    images, labels = mnist
    rng = np.random.default_rng(0)
    folder = tmp_path_factory.mktemp("canvases")
    train = write_set(folder / "train", rng, images[:5000], labels[:5000], 4)
    # Validation digits of the classes trained on only (others are refused).
    seen = np.isin(labels, [int(line.split(",")[-1]) for line in
                            pathlib.Path(train[1]).read_text().split()[1:]])
    seen[:5000] = False
    val = write_set(folder / "val", rng, images[seen], labels[seen], 2)
    return train, val


def outputs(out):
    return sorted(name for name in os.listdir(out) if name != "snapshots")


def test_bad_input_is_refused_before_training(lenet, canvases, tmp_path):
    (images, boxes), _ = canvases
    text = pathlib.Path(boxes).read_text().splitlines()
    cases = [
        (text + [f"{os.path.basename(images[0])},90,90,130,118,3"], ParseError,
         r"line 14: the box \(90, 90, 130, 118\) runs past image .*100 x 100"),
        (text + ["nowhere.png,0,0,28,28,3"], ParseError, "line 14: image 'nowhere.png' is not"),
    ]
    for k, (lines, error, message) in enumerate(cases):
        bad = tmp_path / f"bad{k}.csv"
        bad.write_text("\n".join(lines) + "\n")
        out = tmp_path / f"out{k}"
        with pytest.raises(error, match=message):
            finetune(*lenet, images, bad, out, **QUICK)
        assert outputs(out) == [] and os.listdir(out / "snapshots") == []
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    with pytest.raises(FileError):
        finetune(*lenet, images + [str(empty)], boxes, tmp_path / "out3", **QUICK)
    val = tmp_path / "val.csv"
    val.write_text(f"image,x0,y0,x1,y1,label\n{images[0]},0,0,28,28,seven\n")
    with pytest.raises(ParseError, match="line 2: label 'seven' is not a class"):
        finetune(*lenet, images, boxes, tmp_path / "out4", val=val, **QUICK)


def test_head_rows_copied_and_outputs_load_in_opencv(lenet, canvases, tmp_path):
    (images, boxes), _ = canvases
    names = [str(d) for d in range(10)]
    result = finetune(*lenet, images, boxes, tmp_path / "out", labels=names,
                      **{**QUICK, "iterations": 0})
    assert outputs(tmp_path / "out") == ["deploy.prototxt", "labels.txt", "log.csv", "log.png",
                                         "weights.caffemodel"]
    classes = pathlib.Path(result.labels).read_text().split()
    assert classes[-1] == BACKGROUND and set(classes[:-1]) <= set(names)
    old = surgery.Net(str(lenet[0]), str(lenet[1]))
    new = surgery.Net(result.deploy, result.weights)
    head = new.params["finetune_head"]
    for k, name in enumerate(classes[:-1]):
        np.testing.assert_array_equal(head[0][k].ravel(), old.params["ip2"][0][int(name)])
        assert head[1][k] == old.params["ip2"][1][int(name)]
    image = np.random.default_rng(1).random((1, 1, 60, 76), np.float32)
    reader = opencv_caffe_reader()(result.deploy, result.weights)
    reader.setInput(image)
    np.testing.assert_allclose(reader.forward(), new.forward(data=image)["prob"], atol=1e-5)


def test_a_head_with_background_is_kept(lenet, canvases, tmp_path):
    (images, boxes), _ = canvases
    first = finetune(*lenet, images, boxes, tmp_path / "a", **{**QUICK, "iterations": 0})
    again = finetune(first.deploy, first.weights, images, boxes, tmp_path / "b",
                     labels=first.labels, **{**QUICK, "iterations": 0})
    assert again.classes == first.classes
    assert [l.name for l in surgery.Net(again.deploy).layers] == \
        [l.name for l in surgery.Net(first.deploy).layers]


def weights_of(result):
    net = surgery.Net(result.deploy, result.weights)
    return {name: [np.array(b) for b in net.params[name]] for name in net.params}


def test_resume_equals_an_uninterrupted_run(lenet, canvases, tmp_path):
    (images, boxes), _ = canvases
    straight = finetune(*lenet, images, boxes, tmp_path / "straight", **QUICK)
    finetune(*lenet, images, boxes, tmp_path / "parts", **{**QUICK, "iterations": 3})
    resumed = finetune(*lenet, images, boxes, tmp_path / "parts", resume=True, **QUICK)
    assert resumed.iterations == straight.iterations == 6
    a, b = weights_of(straight), weights_of(resumed)
    assert a.keys() == b.keys()
    for name in a:
        for x, y in zip(a[name], b[name]):
            np.testing.assert_array_equal(x, y)
    assert [r["loss"] for r in resumed.log] == [r["loss"] for r in straight.log]
    # Fresh weights would differ: resuming is what made them equal.
    fresh = weights_of(finetune(*lenet, images, boxes, tmp_path / "fresh",
                                **{**QUICK, "seed": 1}))
    assert any(not np.array_equal(fresh[n][0], a[n][0]) for n in a)


@pytest.mark.slow
def test_ctrl_c_leaves_a_snapshot_to_resume_from(lenet, canvases, tmp_path):
    (images, boxes), _ = canvases
    def interrupt(signum, frame):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        signal.setitimer(signal.ITIMER_REAL, 3)
        with pytest.raises(KeyboardInterrupt):
            finetune(*lenet, images, boxes, tmp_path / "run",
                     **{**QUICK, "iterations": 10**6, "snapshot_every": 10**6})
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    snapshots = os.listdir(tmp_path / "run" / "snapshots")
    records = [n for n in snapshots if n.startswith("iter_") and n.endswith(".json")]
    assert len(records) == 1
    k = int(records[0][5:-5])
    assert k >= 1 and f"iter_{k}.caffemodel" in snapshots and f"iter_{k}.solverstate" in snapshots
    resumed = finetune(*lenet, images, boxes, tmp_path / "run", resume=True,
                       **{**QUICK, "iterations": k + 2})
    straight = finetune(*lenet, images, boxes, tmp_path / "straight",
                        **{**QUICK, "iterations": k + 2})
    a, b = weights_of(straight), weights_of(resumed)
    for name in a:
        np.testing.assert_array_equal(a[name][0], b[name][0])


def test_command_line(lenet, canvases, tmp_path, capsys):
    from surgery.cli import main
    (images, boxes), (_, val) = canvases
    out = tmp_path / "out"
    code = main(["finetune", str(lenet[0]), str(lenet[1]), *images, "--boxes", boxes,
                 "--out", str(out), "--iterations", "4", "--val", val, "--val-every", "2",
                 "--crop", "60,60", "--solver", "adam"])
    printed = capsys.readouterr().out
    assert code == 0 and "validation AP@0.5 after" in printed
    assert outputs(out) == ["deploy.prototxt", "detections.png", "labels.txt", "log.csv",
                            "log.png", "weights.caffemodel"]
    log = pathlib.Path(out / "log.csv").read_text().splitlines()
    assert log[0] == "iteration,loss,ap" and len(log) == 5 and log[2].split(",")[2] != ""
    bad = tmp_path / "bad.csv"
    bad.write_text("image,x0,y0,x1,y1,label\nnowhere.png,0,0,28,28,3\n")
    assert main(["finetune", str(lenet[0]), str(lenet[1]), *images, "--boxes", str(bad),
                 "--out", str(tmp_path / "bad"), "--iterations", "4"]) == 2
    assert "is not among the images given" in capsys.readouterr().err


@pytest.mark.slow
def test_it_learns_to_detect_digits_among_clutter(lenet, mnist, tmp_path):
    """LeNet, trained on centred 28 x 28 digits without a background class,
    fine-tuned with the defaults on 30 cluttered canvases (30 more to pick
    the best snapshot), detects the digits of 30 other canvases (digits it
    never saw) at AP@0.5 >= 0.90, within 5 minutes on 2 cores."""
    train, val, test = learning_sets(tmp_path, *mnist)
    surgery.set_num_threads(2)
    result = finetune(*lenet, *train, tmp_path / "out", val=val[1], progress=False)
    digit_names = [str(d) for d in range(10)]
    # Scored at stride 2 (LeNet's 4, rarefied exactly: a window within a
    # pixel of each digit) and at 4, before and after.
    scores = {(when, stride): score_detector(*files, test[1], names, stride=stride)
              for when, files, names in (("before", lenet, digit_names),
                                         ("after", (result.deploy, result.weights),
                                          result.labels))
              for stride in (4, 2)}
    for (when, stride), ap in scores.items():
        print(f"AP@0.5 {when}, stride {stride}: {ap.ap:.3f} ({ap.true} true, {ap.false} false "
              f"detections of {ap.boxes} digits)")
    print(f"{result.iterations} iterations, best at {result.best_iteration}, "
          f"{result.seconds:.0f} s")
    assert scores["after", 2].ap >= 0.90
    for stride in (4, 2):
        assert scores["after", stride].ap >= scores["before", stride].ap + 0.1
        assert scores["after", stride].false < scores["before", stride].false / 3
    assert result.seconds <= 300
