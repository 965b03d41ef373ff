"""The picture of a map at stride s beside the map at s/f (overlay.draw_strides,
``caffe-surgery demo --stride``): written, and showing two maps whose cells
are the maps' own, each drawn where its windows lie."""

import numpy as np
import pytest
import skimage.io

import surgery
from surgery import overlay
from surgery.cli import main


def test_demo_draws_the_map_at_both_strides(tmp_path, capsys):
    png, strides_png = tmp_path / "d.png", tmp_path / "strides.png"
    assert main(["demo", "--png", str(png), "--stride", "2",
                 "--stride-png", str(strides_png)]) == 0
    said = capsys.readouterr().out
    assert "rarefied by 2" in said
    assert "at stride 4 (17x33 map)" in said and "at stride 2 (33x65 map)" in said
    picture = skimage.io.imread(strides_png)
    scale = overlay.layout(92, 156)
    assert picture.shape == (92 * scale + overlay.TITLE_PX + overlay.CAPTION_PX,
                             2 * 156 * scale + overlay.GAP_PX + overlay.BAR_PX, 4)
    assert strides_png.stat().st_size < 300_000


@pytest.fixture(scope="module")
def lenet_maps(lenet, mnist):
    """Trained LeNet's maps of one digits canvas at stride 4 and, rarefied, 2."""
    images, _ = mnist
    canvas = np.zeros((60, 76), np.float32)
    canvas[6:34, 30:58] = images[0] / 255.0
    net = surgery.fully_convolutionalize(*lenet).net
    coarse = surgery.dense_forward(net, canvas)
    fine = surgery.dense_forward(net, canvas, stride=2)
    return coarse, fine


def test_each_panel_shows_its_maps_cells_where_they_look(lenet_maps):
    coarse, fine = lenet_maps
    assert (coarse.shape, fine.shape) == ((9, 13), (17, 25))
    figure = overlay.draw_strides([coarse, fine], cls=7)
    panels = [axes for axes in figure.axes if axes.images]
    heat = [axes.images[1] for axes in panels[:2]]
    for shown, dense in zip(heat, (coarse, fine)):
        np.testing.assert_array_equal(shown.get_array(), dense.scores[7])
        # Each cell a stride-sized square centred on its window's centre.
        left, right, bottom, top = shown.get_extent()
        (sh, sw), (wh, ww) = dense.geometry.stride, dense.geometry.window
        assert (left, top) == (ww / 2 - sw / 2, wh / 2 - sh / 2)
        assert (right - left, bottom - top) == (dense.shape[1] * sw, dense.shape[0] * sh)
    assert [axes.get_title() for axes in panels[:2]] == ["stride 4: 9x13 cells",
                                                         "stride 2: 17x25 cells"]


def test_maps_of_different_images_are_refused(lenet_maps, lenet):
    coarse, _ = lenet_maps
    other = surgery.dense_forward(surgery.fully_convolutionalize(*lenet).net, np.zeros((40, 40)))
    with pytest.raises(surgery.ShapeError, match="one image"):
        overlay.draw_strides([coarse, other])
