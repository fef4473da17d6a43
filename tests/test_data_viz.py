"""viz helpers and the widget's pure function (headless)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from medsynth import viz
from medsynth.data import make_brain, make_retina
from medsynth.widgets import retina_explorer, retina_view


def test_viz_figures():
    s = make_retina(0, (96, 120), severity=0.7, n_frames=3)
    assert viz.overlay(s.fundus, s.masks["vessels"]).shape == (96, 120, 3)
    assert viz.to_rgb(np.zeros((1, 8, 8)) - 1).shape == (8, 8, 3)
    fig = viz.mask_panel(s.fundus, s.masks)
    assert len(fig.axes) >= len(s.masks)
    assert len(viz.sequence_strip(s.frames, s.frame_times, s.phases, s.leakage_frames).axes) == 3
    b = make_brain(0, (64, 64))
    assert len(viz.brain_panel(b.images, b.labels, b.brain_mask).axes) == 6
    assert viz.label_rgb(b.labels).shape == (64, 64, 3)
    plt.close("all")


def test_retina_view_pure_function():
    img, cap = retina_view(1, 0.8, 8, size=(64, 80), n_frames=9)
    assert img.shape == (64, 240, 3) and 0 <= img.min() and img.max() <= 1
    assert "late" in cap
    early, _ = retina_view(1, 0.8, 0, size=(64, 80), n_frames=9)
    assert np.abs(early - img).mean() > 0.01


def test_explorer_builds():
    from medsynth.widgets import LIVE_NOTE, parts

    w = retina_explorer(size=(48, 60), n_frames=3)
    rows, pic, cap = parts(w)
    assert [c.description for c in rows[0]] == ["seed", "severity", "frame"] and cap.startswith("seed 0")
    assert LIVE_NOTE in w.children[-1].value


def test_explorer_redraws_when_a_control_moves():
    from medsynth.widgets import parts

    w = retina_explorer(size=(48, 60), n_frames=3)
    (controls,), pic, cap = parts(w)
    before = (bytes(pic.value), cap)
    controls[2].value = 2  # the frame slider
    assert bytes(pic.value).startswith(b"\x89PNG") and bytes(pic.value) != before[0]
    assert "frame 2" in parts(w)[2] and parts(w)[2] != before[1]


def test_chapter05_explorers_build_and_redraw():
    from medsynth.widgets import knowledge_explorer, parts, video_explorer

    rng = np.random.default_rng(0)
    frames = rng.random((4, 16, 16))
    kw = knowledge_explorer(frames, frames[-1] > 0.5)
    kw.children[0].children[0].value = 10.0  # threshold
    assert "threshold 10/255" in parts(kw)[2]
    vw = video_explorer(rng.random((16, 16, 3)), frames, frames[::-1])
    vw.children[0].children[0].value = 3
    assert parts(vw)[2].startswith("frame 4/4")


def test_explorer_pictures_have_a_visible_edge_and_captions_wrap() -> None:
    """Issue 16.2: a white panel keeps a grey edge on a white page; the caption is wrapping HTML, escaped."""
    import io

    from PIL import Image

    from medsynth.widgets import _live, parts

    w = _live([], lambda: (np.ones((4, 6)), "a < b & c"))
    _, pic, cap = parts(w)
    px = np.asarray(Image.open(io.BytesIO(bytes(pic.value))))
    assert px.shape == (6, 8) and px[0].max() < 200 and px[:, 0].max() < 200 and px[1:-1, 1:-1].min() == 255
    assert cap == "a < b & c" and w.children[-2].value == "a &lt; b &amp; c"
    assert "medsynth-caption" in w.children[-2]._dom_classes
