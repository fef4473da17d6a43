"""Chapter 04 training tasks, each a :class:`~medsynth.training.GANTask` run by the shared Trainer (one import
point for the notebook and the run module; each task lives in a module of its own):

* :mod:`.structure_task` -- the structure-map generator (Sec. 4.2.2, Fig. 7, Eqs. 6-11);
* :mod:`.multimodal_task` -- the multi-modal generator (Sec. 4.3, Fig. 8, Eqs. 13-18);
* :mod:`.support_tasks` -- the modality translator (Sec. 4.4, Eqs. 19-21) and the tumour segmenter (Eq. 22);
* :mod:`.objectives` -- the least-squares adversarial term, MSE and Adam (beta1 0.5) they share.
"""

from medsynth.models.structsynth.multimodal_task import MM_WEIGHTS, MultiModalTask, modality_pairs
from medsynth.models.structsynth.structure_task import (
    STRUCT_WEIGHTS,
    StructureGenTask,
    density_threshold,
    straight_through,
)
from medsynth.models.structsynth.support_tasks import SegTask, TranslatorTask

__all__ = [
    "STRUCT_WEIGHTS",
    "MM_WEIGHTS",
    "StructureGenTask",
    "MultiModalTask",
    "TranslatorTask",
    "SegTask",
    "straight_through",
    "density_threshold",
    "modality_pairs",
]
