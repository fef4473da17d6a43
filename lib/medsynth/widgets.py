"""ipywidgets explorers. Each wraps a pure function that notebooks also call once in a plain cell
(a headless run only proves the widget builds; the pure function is what tests check)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache

import numpy as np

__all__ = [
    "parts",
    "LIVE_NOTE",
    "retina_view",
    "retina_explorer",
    "knowledge_explorer",
    "video_frame_view",
    "video_explorer",
    "structure_explorer",
    "fusion_explorer",
    "medgan_view",
    "medgan_explorer",
]


@lru_cache(maxsize=16)
def _retina(seed: int, severity: float, size: tuple[int, int], n_frames: int):
    from medsynth.data import make_retina

    return make_retina(seed, size, severity=severity, n_frames=n_frames)


def retina_view(
    seed: int = 0, severity: float = 0.5, frame: int = 0, size: tuple[int, int] = (192, 240), n_frames: int = 9
) -> tuple[np.ndarray, str]:
    """Photograph | FA frame ``frame`` | leakage and lesions on the frame, side by side.

    Returns the (H, 3W, 3) float image in [0,1] and a caption (time, phase, leakage area).
    Phantoms are cached, so moving the frame slider does not regenerate the eye.
    """
    from medsynth.viz import overlay, to_rgb

    s = _retina(int(seed), round(float(severity), 3), tuple(size), int(n_frames))
    k = int(np.clip(frame, 0, n_frames - 1))
    f = s.frames[k]
    lk = s.leakage_frames[k]
    right = overlay(overlay(f, s.masks["lesions"], (1.0, 0.5, 0.0), 0.5), lk, (0.1, 1.0, 0.3), 0.35)
    img = np.concatenate([to_rgb(s.fundus), to_rgb(f), right], axis=1)
    cap = (
        f"seed {seed}, severity {severity:.2f}, frame {k}: t={s.frame_times[k]:.2f} ({s.phases[k]}), "
        f"leakage {int(lk.sum())} px, lesions {int(s.masks['lesions'].sum())} px"
    )
    return img, cap


def _png(img: np.ndarray) -> bytes:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.clip(img, 0, 1) * 255).astype(np.uint8)).save(buf, format="png")
    return buf.getvalue()


def _frame(img: np.ndarray) -> np.ndarray:
    """A 1-px mid-grey frame, so white panels (an organ mask's outside) keep a visible edge on a white page."""
    return np.pad(img, [(1, 1), (1, 1)] + [(0, 0)] * (img.ndim - 2), constant_values=0.5)


def _upscale(img: np.ndarray, min_h: int) -> np.ndarray:
    """Nearest-neighbour enlargement of small images so the widget shows pixels, not a blur."""
    k = max(1, int(np.ceil(min_h / img.shape[0])))
    return img.repeat(k, 0).repeat(k, 1) if k > 1 else img


# Captions wrap (a Label never does: the structure explorer's caption needed ~1500 px and was cut off), and a
# saved notebook's explorer is a still snapshot until its cells run, so each explorer says so.
_STYLE = (
    "<style>.medsynth-caption .widget-html-content{white-space:normal;line-height:1.35}"
    ".medsynth-note .widget-html-content{color:#777;font-style:italic}</style>"
)
LIVE_NOTE = "A saved notebook shows a still picture here: run the cells above to make this explorer live."


def _live(rows: Sequence[Sequence], view: Callable[[], tuple[np.ndarray, str]], min_h: int = 0):
    """The explorers' common frame: rows of controls above a picture, its caption and the "run the cells
    above" note, redrawn from ``view() -> (image in [0,1], caption)`` whenever any control changes.
    :func:`parts` takes such a box apart again (tests, notebooks)."""
    import html

    import ipywidgets as W

    pic = W.Image(format="png")
    cap = W.HTML(layout=W.Layout(width="100%")).add_class("medsynth-caption")
    note = W.HTML(_STYLE + html.escape(LIVE_NOTE)).add_class("medsynth-note")

    def draw(*_):
        img, text = view()
        pic.value, cap.value = _png(_frame(_upscale(img, min_h))), html.escape(text, quote=False)

    for row in rows:
        for w in row:
            w.observe(draw, names="value")
    draw()
    return W.VBox([W.HBox(list(row)) for row in rows] + [pic, cap, note])


def parts(box) -> tuple[list, object, str]:
    """An explorer box as (rows of controls, picture widget, caption as plain text)."""
    import html

    *rows, pic, cap, _note = box.children
    return [list(r.children) for r in rows], pic, html.unescape(cap.value)


def retina_explorer(size: tuple[int, int] = (192, 240), n_frames: int = 9):
    """Sliders for seed, severity and frame over :func:`retina_view`; returns the widget box."""
    import ipywidgets as W

    seed = W.IntSlider(value=0, min=0, max=50, description="seed")
    sev = W.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.1, description="severity")
    frame = W.IntSlider(value=0, min=0, max=n_frames - 1, description="frame")
    return _live([[seed, sev, frame]], lambda: retina_view(seed.value, sev.value, frame.value, size, n_frames))


# -- chapter 05 (Fundus2Video) ------------------------------------------------------------------------------


def knowledge_explorer(frames: np.ndarray, true: np.ndarray, threshold: float = 45.0):
    """Fundus2Video's knowledge mask (Sec. 2.2) live: threshold slider, the two frames, IoU vs true leakage.

    Wraps :func:`medsynth.knowledge.knowledge_view` (frames (T,H,W) in [0,1]; ``true``: the true leakage of
    every frame, (T,H,W) bool, so the scores are against the leakage of the frame the "last" slider picks).
    """
    import ipywidgets as W

    from medsynth.knowledge import knowledge_view

    t = len(frames)
    th = W.FloatSlider(value=threshold, min=0, max=150, step=1, description="threshold")
    a = W.IntSlider(value=0, min=0, max=t - 1, description="first")
    b = W.IntSlider(value=t - 1, min=0, max=t - 1, description="last")

    def view() -> tuple[np.ndarray, str]:
        img, _, text = knowledge_view(frames, true, th.value, a.value, b.value)
        return img, text

    return _live([[th, a, b]], view)


def video_frame_view(cf: np.ndarray, real: np.ndarray, fake: np.ndarray, k: int) -> tuple[np.ndarray, str]:
    """CF photo | real frame k | generated frame k | |difference|, side by side; (H, 4W, 3) and a caption.

    ``cf`` (H,W,3), ``real``/``fake`` (T,H,W), all in [0,1].
    """
    from medsynth.viz import to_rgb

    k = int(np.clip(k, 0, len(real) - 1))
    err = np.abs(real[k] - fake[k])
    img = np.concatenate([to_rgb(cf), to_rgb(real[k]), to_rgb(fake[k]), to_rgb(np.clip(2 * err, 0, 1))], axis=1)
    return (
        img,
        f"frame {k + 1}/{len(real)}: photo | real FFA | generated | 2 x |error| (mean abs error {err.mean():.3f})",
    )


def video_explorer(cf: np.ndarray, real: np.ndarray, fake: np.ndarray):
    """Frame slider over :func:`video_frame_view`."""
    import ipywidgets as W

    k = W.IntSlider(value=0, min=0, max=len(real) - 1, description="frame")
    return _live([[k]], lambda: video_frame_view(cf, real, fake, k.value))


# -- chapter 04 (structure maps) -----------------------------------------------------------------------------


def structure_explorer(
    images: dict, literal_line12: bool = False, alg1: dict | None = None, vessels: dict | None = None
):
    """Algorithm 1 live (chapter 04): image choice, alpha, beta, gamma, sigma1, sigma2 and the line-12
    reading; every intermediate on one shared scale (Fig. 11). Wraps :func:`medsynth.structure.structure_view`.

    ``images``: name -> (H,W) or (H,W,3) array (any range; Algorithm 1 rescales to [0,1]). ``alg1``: the
    starting settings (the notebook's; default :data:`~medsynth.structure.ALG1_DEFAULTS`), per image when a
    dict of dicts keyed by image name. ``vessels``: name -> (vessel labels, FOV) for a live Dice/recall readout.
    """
    import ipywidgets as W

    from medsynth.structure import ALG1_DEFAULTS, structure_view

    def start(name: str) -> dict:
        a = alg1 or {}
        if a and all(isinstance(v, dict) for v in a.values()):  # settings per image
            a = a.get(name, {})
        return {**ALG1_DEFAULTS, **a}

    d = start(next(iter(images)))
    pick = W.Dropdown(options=list(images), description="image")
    sl = {
        "alpha": W.FloatSlider(
            value=d["alpha"], min=0.0, max=0.3, step=0.001, description="alpha", readout_format=".3f"
        ),
        "beta": W.FloatSlider(value=d["beta"], min=0.0, max=1.0, step=0.05, description="beta"),
        "gamma": W.FloatSlider(value=d["gamma"], min=0.0, max=0.5, step=0.01, description="gamma"),
        "sigma1": W.FloatSlider(value=d["sigma1"], min=0.0, max=3.0, step=0.1, description="sigma1"),
        "sigma2": W.FloatSlider(value=d["sigma2"], min=0.0, max=3.0, step=0.1, description="sigma2"),
    }
    lit = W.Checkbox(value=literal_line12, description="line 12 as printed")
    sliders = list(sl.values())

    def reset(change) -> None:  # a new image starts from its own settings (brain vs retina)
        p = start(change["new"])
        for k, w in sl.items():
            w.value = p[k]

    pick.observe(reset, names="value")

    def view() -> tuple[np.ndarray, str]:
        p = {**start(pick.value), **{k: w.value for k, w in sl.items()}, "literal_line12": lit.value}
        ves = (vessels or {}).get(pick.value)
        return structure_view(
            images[pick.value], vessels=None if ves is None else ves[0], fov=None if ves is None else ves[1], **p
        )

    return _live([[pick, lit], sliders[:3], sliders[3:]], min_h=128, view=view)


def fusion_explorer(
    images: dict, task=None, alg1: dict | None = None, alg2: dict | None = None, real: dict | None = None
):
    """Eq. 12 live (chapter 04). Without ``task``: alpha1, alpha2 and the seed over s | m | s'
    (:func:`medsynth.structure.fusion_view`). With the trained multi-modal task: s' goes through G and the
    four synthesized modalities of two seeds are shown side by side, with Algorithm 2's alpha and p and the
    real modalities (``real``: name -> (4,H,W) in [0,1]) for comparison
    (:func:`medsynth.models.structsynth.views.synthesis_view`). ``alg1``/``alg2``: the notebook's settings."""
    import ipywidgets as W

    from medsynth.structure import ALG2_DEFAULTS, fusion_view

    m2 = {**ALG2_DEFAULTS, **(alg2 or {})}
    pick = W.Dropdown(options=list(images), description="image")
    a1 = W.FloatSlider(value=0.5, min=0.0, max=1.0, step=0.05, description="alpha1")
    a2 = W.FloatSlider(value=0.6, min=0.0, max=1.0, step=0.05, description="alpha2")
    seed = W.IntSlider(value=0, min=0, max=100, description="seed")
    m_a = W.FloatSlider(value=m2["alpha"], min=0.0, max=1.0, step=0.05, description="Alg.2 alpha")
    m_p = W.IntSlider(value=m2["p"], min=0, max=20, description="Alg.2 p")

    def view() -> tuple[np.ndarray, str]:
        a2_ = {**m2, "alpha": m_a.value, "p": m_p.value}
        if task is None:
            return fusion_view(images[pick.value], a1.value, a2.value, seed.value, alg1=alg1, alg2=a2_)
        from medsynth.models.structsynth.views import synthesis_view

        return synthesis_view(
            task,
            images[pick.value],
            a1.value,
            a2.value,
            (seed.value, seed.value + 1),
            alg1,
            a2_,
            real=(real or {}).get(pick.value),
        )

    return _live([[pick, seed], [a1, a2], [m_a, m_p]], min_h=128, view=view)


# -- chapter 02 (MedGAN) -------------------------------------------------------------------------------------


def medgan_view(
    models: dict, task: str, severity: float = 1.0, seed: int = 0, size: int = 64, phantom_seed: int = 900_000
) -> tuple[np.ndarray, str]:
    """Degraded input | trained model's output | target for one fresh phantom slice, with the metrics.

    ``models``: task -> a trained task object with ``generate`` (e.g. the MedGAN rows of a run);
    ``severity`` scales the degradation (:func:`medsynth.data.medgan_tasks.degrade`: motion amplitude, PET
    count level); returns the (H, 3W, 3) image in [0,1] and a caption with SSIM / PSNR / UQI of input and output.
    """
    import torch

    from medsynth.data import make_brain
    from medsynth.data.medgan_tasks import degrade
    from medsynth.metrics import psnr, ssim, uqi
    from medsynth.models import translate
    from medsynth.viz import to_rgb

    b = make_brain(int(phantom_seed) + int(seed), size=(size, size))
    src, dst = degrade(b, task, float(severity), int(seed))
    x = torch.from_numpy(src)[None, None] * 2 - 1
    out = ((translate(models[task], x)[0, 0] + 1) / 2).clamp(0, 1).numpy()
    score = lambda a: f"SSIM {ssim(a, dst):.3f}, PSNR {psnr(a, dst):.1f} dB, UQI {uqi(a, dst):.3f}"  # noqa: E731
    same = task != "pet2ct"  # input and target share a modality: the input's own scores are the baseline
    cap = f"{task}, severity {severity:.2f}: input | model | target.  model: {score(out)}" + (
        f";  input as is: {score(src)}" if same else ""
    )
    return np.concatenate([to_rgb(src), to_rgb(out), to_rgb(dst)], axis=1), cap


def medgan_explorer(models: dict, size: int = 64):
    """Task, severity and slice controls over :func:`medgan_view`."""
    import ipywidgets as W

    task = W.Dropdown(options=sorted(models), value=sorted(models)[0], description="task")
    sev = W.FloatSlider(value=1.0, min=0.0, max=3.0, step=0.25, description="severity")
    seed = W.IntSlider(value=0, min=0, max=30, description="slice")
    return _live([[task, sev, seed]], lambda: medgan_view(models, task.value, sev.value, seed.value, size), min_h=192)
