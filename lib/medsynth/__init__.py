"""MedSynth: GAN-based medical image synthesis, reproduced paper by paper.

The library is thin on purpose: shared building blocks (``blocks``, ``discriminators``,
``losses``), one training loop (``training``), metrics, data (phantoms and real-data
readers) and one module per paper under ``models``. The chapter notebooks call it.
"""

from medsynth.device import pick_device, seed_everything

__all__ = ["pick_device", "seed_everything", "__version__"]
__version__ = "0.1.0"
