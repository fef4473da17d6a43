"""Data: procedural phantoms with ground truth, one on-disk layout, torch Datasets, realism checks.

* :func:`make_retina` - colour fundus photo + registered FA (+ FA sequence, masks) from a seed;
* :func:`make_brain` - BraTS-like T1/T2/T1c/FLAIR slice on MNI152 anatomy, tumour labels, brain mask;
* :mod:`.degrade` - MedGAN's degradations (k-space motion, low-count PET noise, PET/CT-like pair);
* :mod:`.medgan_tasks` - MedGAN's three tasks as (input, target) tensors, and the degradation-severity knob;
* :mod:`.layout` - ``<root>/<split>/<modality>/<id>.png``; :func:`ensure_phantoms` caches phantoms;
* :mod:`.datasets` - :class:`PairedDataset`, :class:`SequenceDataset`, :class:`MultiModalDataset`;
* :mod:`.realism` - phantom-vs-real statistics (histograms, vessel fraction, power spectra).
"""

GENERATOR_VERSION = "6"  # bump when phantom pixels change: invalidates ensure_phantoms caches

from medsynth.data.layout import ensure_phantoms, list_ids, load_pair, read_image, read_meta, write_phantoms  # noqa: E402
from medsynth.data.retina import MASK_NAMES, RetinaSample, make_retina  # noqa: E402
from medsynth.data.retina_fa import PHASES, frame_times  # noqa: E402

__all__ = [
    "make_retina",
    "RetinaSample",
    "MASK_NAMES",
    "PHASES",
    "frame_times",
    "make_brain",
    "BrainSample",
    "ensure_phantoms",
    "write_phantoms",
    "load_pair",
    "read_image",
    "read_meta",
    "list_ids",
    "PairedDataset",
    "SequenceDataset",
    "MultiModalDataset",
    "GENERATOR_VERSION",
]


def __getattr__(name: str):  # lazy: torch-based datasets and the brain phantom load on first use
    if name in ("PairedDataset", "SequenceDataset", "MultiModalDataset"):
        from medsynth.data import datasets

        return getattr(datasets, name)
    if name in ("make_brain", "BrainSample"):
        from medsynth.data import brain

        return getattr(brain, name)
    raise AttributeError(f"module 'medsynth.data' has no attribute {name!r}")
