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
    w = retina_explorer(size=(48, 60), n_frames=3)
    assert len(w.children) == 3


def test_explorer_redraws_when_a_control_moves():
    w = retina_explorer(size=(48, 60), n_frames=3)
    controls, pic, cap = w.children
    before = (pic.value, cap.value)
    controls.children[2].value = 2  # the frame slider
    assert bytes(pic.value).startswith(b"\x89PNG") and bytes(pic.value) != bytes(before[0])
    assert "frame 2" in cap.value and cap.value != before[1]


def test_chapter05_explorers_build_and_redraw():
    from medsynth.widgets import knowledge_explorer, video_explorer
    rng = np.random.default_rng(0)
    frames = rng.random((4, 16, 16))
    kw = knowledge_explorer(frames, frames[-1] > 0.5)
    kw.children[0].children[0].value = 10.0  # threshold
    assert "threshold 10/255" in kw.children[2].value
    vw = video_explorer(rng.random((16, 16, 3)), frames, frames[::-1])
    vw.children[0].children[0].value = 3
    assert vw.children[2].value.startswith("frame 4/4")
