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
