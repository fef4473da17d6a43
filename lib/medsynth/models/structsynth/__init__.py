"""Chapter 04: multi-modal medical image synthesis from structural feature maps (Yili Qu, master's thesis,
Sun Yat-sen University, 2020; the author's TensorFlow demo: github.com/quyili/MultimodalMedicalImagesSynthesis,
``code_demo/``).

* :mod:`.networks` -- VGG11-style encoders/discriminators, the decoder G_s, the conditional U-Net.
* :mod:`.data` -- brain slices with their Algorithm 1/2 maps, lesion selection and augmentation.
* :mod:`.tasks` -- the training tasks (one import point for :mod:`.structure_task`, :mod:`.multimodal_task`,
  :mod:`.support_tasks`): structure generator (Eqs. 6-11), multi-modal generator
  (Eqs. 13-18), modality translator (Eqs. 19-21), tumour segmenter (Eq. 22).
* :mod:`.experiments` -- the synthetic set (Sec. 4.6), diversity, Table 5.

The chapter's presets and stages live in :mod:`medsynth.models.structsynth_run`.
"""

from medsynth.models.structsynth.networks import (
    CondUNet,
    Decoder,
    LatentDisc,
    VAEEncoder,
    VGGDisc,
    VGGTrunk,
    kl_divergence,
    latent_shape,
    one_hot_map,
    reparameterise,
)

__all__ = [
    "CondUNet",
    "Decoder",
    "LatentDisc",
    "VAEEncoder",
    "VGGDisc",
    "VGGTrunk",
    "kl_divergence",
    "latent_shape",
    "one_hot_map",
    "reparameterise",
]
