"""The explorers the browser test opens in JupyterLab: one notebook cell per explorer, on phantom data, no training.

Each entry is (name, code); the code's last expression is the explorer widget. Kept apart from the test so that a
chapter that adds an explorer adds one line here (and ``test_every_explorer_is_in_the_browser_test`` says so).
"""

from __future__ import annotations

import sys

SETUP = """\
import numpy as np
from medsynth.data import make_brain, make_retina
eye = make_retina(3, (96, 120), severity=0.8, n_frames=6)
brain = make_brain(0, (96, 96))
gallery = {"brain FLAIR": brain.images["flair"], "retina photo": eye.fundus}
"""

EXPLORERS: list[tuple[str, str]] = [
    ("retina_explorer", "from medsynth.widgets import retina_explorer\nretina_explorer(size=(96, 120), n_frames=6)"),
    (
        "knowledge_explorer",
        "from medsynth.widgets import knowledge_explorer\nknowledge_explorer(eye.frames, eye.leakage_frames > 0.5)",
    ),
    (
        "video_explorer",
        "from medsynth.widgets import video_explorer\n"
        "video_explorer(eye.fundus, eye.frames, np.roll(eye.frames, 1, axis=0))",
    ),
    ("structure_explorer", "from medsynth.widgets import structure_explorer\nstructure_explorer(gallery)"),
    ("fusion_explorer", "from medsynth.widgets import fusion_explorer\nfusion_explorer(gallery)"),
    # untrained networks: the browser test checks rendering and redrawing, not what the model learned
    (
        "medgan_explorer",
        "from medsynth.models.medgan import MedGANTask\nfrom medsynth.widgets import medgan_explorer\n"
        "g = MedGANTask(n_blocks=1, num_downs=6, ngf=4, ndf=8, style=False)\n"
        "medgan_explorer({'motion': g, 'denoise': g}, 64)",
    ),
    (
        "retigan_explorer",
        "from medsynth.models import vessel_segmenter\nfrom medsynth.models.retigan import RetiGANTask\n"
        "from medsynth.models.retigan_explorer import retigan_explorer\n"
        "retigan_explorer(RetiGANTask(ngf=8, n_blocks=1, vgg_features='off'), "
        "vessel_segmenter.build(width=4, depth=2), size=64)",
    ),
]


# What JupyterLab 4 writes once the kernel has started: a notebook storing anything else opens "dirty".
KERNELSPEC = {"display_name": "Python 3 (ipykernel)", "language": "python", "name": "python3"}
LANGUAGE_INFO = {
    "codemirror_mode": {"name": "ipython", "version": 3},
    "file_extension": ".py",
    "mimetype": "text/x-python",
    "name": "python",
    "nbconvert_exporter": "python",
    "pygments_lexer": "ipython3",
    "version": "{}.{}.{}".format(*sys.version_info[:3]),
}


def notebook_json() -> dict:
    """A notebook (nbformat 4 as JupyterLab writes it) with the set-up cell and one cell per explorer."""

    def cell(src: str) -> dict:
        return {
            "cell_type": "code",
            "execution_count": None,
            "id": f"c{abs(hash(src)) % 10**8}",
            "metadata": {},
            "outputs": [],
            "source": src,
        }

    return {
        "cells": [cell(SETUP)] + [cell(code) for _, code in EXPLORERS],
        "metadata": {"kernelspec": KERNELSPEC, "language_info": LANGUAGE_INFO},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
