"""One module per paper: generators, paper-specific heads and the :class:`~medsynth.training.GANTask`
with that paper's training iteration.

* :mod:`~medsynth.models.pix2pix` -- U-Net + 70x70 PatchGAN (Isola et al. 2017), a chapter-01 baseline.
* :mod:`~medsynth.models.pix2pixhd` -- global generator + local enhancer, multi-scale D, feature
  matching, VGG (Wang et al. 2018), a chapter-01 baseline and the base of chapters 01 and 03.
* :mod:`~medsynth.models.fundus2angio` -- chapter 01.
* :mod:`~medsynth.models.medgan` (+ ``_run``) -- chapter 02: CasNet, D-feature perceptual loss, style/content losses.
* :mod:`~medsynth.models.retigan` (+ ``_run``, ``_explorer``), :mod:`~medsynth.models.vessel_segmenter` -- chapter 03
  (the DRIVE vessel segmenter also serves chapter 04).
* :mod:`~medsynth.models.structsynth` (package: networks, data, tasks, experiments) -- chapter 04: VAE-GAN structure
  generator, conditional U-Net with ACGAN discriminator, modality translator, lesion segmenter.
* :mod:`~medsynth.models.fundus2video` -- chapter 05: autoregressive video generator, knowledge-aware D.

Every image-to-image task here has ``generate(src) -> image``; :func:`translate` runs it for
evaluation (eval mode, no grad, in chunks) and restores the training mode afterwards.
"""

from __future__ import annotations

import torch

from medsynth.training import GANTask, eval_mode, unwrap

__all__ = ["translate"]


@torch.no_grad()
def translate(
    task: GANTask, src: torch.Tensor, batch_size: int = 8, device: torch.device | str | None = None
) -> torch.Tensor:
    """``task.generate`` over ``src`` (N,C,H,W in [-1, 1]) in eval mode; returns a CPU tensor in [-1, 1]."""
    nets = list(task.nets.values())
    if device is None:
        device = next(unwrap(nets[0]).parameters()).device
    with eval_mode(nets):
        outs = [task.generate(src[i : i + batch_size].to(device)).float().cpu() for i in range(0, len(src), batch_size)]
    return torch.cat(outs)
