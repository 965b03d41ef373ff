"""caffe.draw through the face: pycaffe's test_draw, the file the sdist does
not ship, run the way its body runs (every Net prototxt of the source tree's
models/, parsed with text_format and drawn left to right), on the sdist's
models/ (it has no examples/) and the fixture nets. Graphviz lays the graphs
out (Debian's graphviz, pydot from the `draw` extra); its plain output is the
oracle that every bottom and top of every drawn layer became an edge."""
import shutil

import numpy as np
import pytest

import surgery.pycaffe as caffe
import surgery.pycaffe.draw  # noqa: F401  (pycaffe users import caffe.draw so)
from surgery.pycaffe.proto import caffe_pb2
from surgery.testing import fixtures

from test_pycaffe_upstream import extract

pydot = pytest.importorskip("pydot", reason="caffe.draw needs pydot (the `draw` extra)")
pytestmark = pytest.mark.skipif(shutil.which("dot") is None,
                                reason="caffe.draw needs Graphviz's dot (Debian: graphviz)")
cv2 = pytest.importorskip("cv2")
text_format = pytest.importorskip("google.protobuf.text_format")


def sdist_models(folder):
    """test_draw's files: the Net prototxts under models/ ('solver' excluded)."""
    return extract(folder, lambda parts: parts[0] == "models" and parts[-1].endswith(".prototxt")
                   and "solver" not in parts[-1])


def fixture_nets():
    found = sorted(p for p in fixtures().rglob("*.prototxt") if "solver" not in p.name)
    if not found:
        pytest.skip(f"no fixture nets under {fixtures()}")
    return found


def parse(path):
    net = caffe_pb2.NetParameter()
    text_format.Merge(path.read_text(), net)
    return net


def included(layer, phase):
    """Caffe's include/exclude rule for a phase (None: every layer)."""
    if phase is None:
        return True
    if layer.include:
        return any(rule.phase == phase for rule in layer.include)
    return not any(rule.phase == phase for rule in layer.exclude)


def edges_expected(net, phase=None):
    return sum(len(layer.bottom) + len(layer.top)
               for layer in net.layer if included(layer, phase))


def edges_drawn(net, phase=None):
    plain = caffe.draw.draw_net(net, "LR", ext="plain", phase=phase).decode()
    return sum(1 for line in plain.splitlines() if line.startswith("edge "))


@pytest.mark.slow
def test_test_draw_body_on_the_sdists_models_and_the_fixture_nets(tmp_path):
    files = sdist_models(tmp_path) + fixture_nets()
    assert len(files) >= 10
    for path in files:
        net = parse(path)
        png = caffe.draw.draw_net(net, "LR")
        image = cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR)
        assert image is not None and min(image.shape[:2]) > 10, path
        assert edges_drawn(net) == edges_expected(net), path


def test_phase_filter_draws_only_that_phases_layers(tmp_path):
    train_val = next(p for p in sdist_models(tmp_path) if p.name == "train_val.prototxt")
    net = parse(train_val)
    counts = {phase: edges_expected(net, phase) for phase in (caffe.TRAIN, caffe.TEST)}
    assert counts[caffe.TRAIN] != counts[caffe.TEST] < edges_expected(net)
    for phase, expected in counts.items():
        assert edges_drawn(net, phase) == expected


def test_draw_net_to_file_writes_the_picture_whole_or_not_at_all(tmp_path):
    net = parse(fixture_nets()[0])
    target = tmp_path / "net.png"
    caffe.draw.draw_net_to_file(net, str(target))
    assert cv2.imread(str(target)) is not None
    # Graphviz refuses the format only after the target was named: the file
    # there before stays as it was.
    kept = tmp_path / "net.nosuchformat"
    kept.write_bytes(b"an earlier drawing")
    with pytest.raises(AssertionError, match="-Tnosuchformat"):  # pydot: dot refused it
        caffe.draw.draw_net_to_file(net, str(kept))
    assert kept.read_bytes() == b"an earlier drawing"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["net.nosuchformat", "net.png"]
