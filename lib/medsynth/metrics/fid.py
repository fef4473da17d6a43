"""FID and KID between two image sets, labelled with the features they were computed on.

* FID (Heusel et al. 2017, "GANs trained by a two time-scale update rule converge to a local
  Nash equilibrium"): Frechet distance between Gaussians fitted to Inception features,
  ``||mu1 - mu2||^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))``; computed by pytorch-fid's
  :func:`~pytorch_fid.fid_score.calculate_frechet_distance` (same steps here on SciPy >= 1.18,
  where that function fails).
* KID (Binkowski et al. 2018, "Demystifying MMD GANs"): unbiased MMD^2 with the cubic polynomial
  kernel ``k(x, y) = (x.y / d + 1)^3``, averaged over random subsets (mean and std reported).

Only 2048-d features from the pretrained network give numbers comparable to published FID/KID;
:attr:`MetricResult.label` says so whenever that is not the case.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch

from medsynth.metrics.features import Images, inception_features

__all__ = ["LabelledValue", "MetricResult", "fid", "kid", "fid_from_features", "kid_from_features"]

_BLOCK_NAMES = {64: "maxpool1", 192: "maxpool2", 768: "Mixed_6e", 2048: "pool3"}


class LabelledValue:
    """Shared behaviour of metric results that carry what they were computed on.

    Subclasses (dataclasses) define ``value``, ``std``, ``label``, ``comparable`` and ``_counts``.
    """

    def _counts(self) -> str:  # sample sizes, e.g. "n_real=56, n_fake=56"
        return ""

    def __str__(self) -> str:
        pm = "" if self.std is None else f" ± {self.std:.3g}"
        return f"{self.label} = {self.value:.4g}{pm} ({self._counts()})"

    def __float__(self) -> float:
        return float(self.value)

    def as_dict(self) -> dict:
        """Plain dict for metrics.json, including ``label`` and ``comparable``."""
        return {**asdict(self), "label": self.label, "comparable": self.comparable}


@dataclass(frozen=True)
class MetricResult(LabelledValue):
    """A distribution metric's value and what it was computed on (``features``: pretrained|random)."""

    value: float
    name: str
    features: str
    dims: int
    n_real: int
    n_fake: int
    std: float | None = None

    @property
    def comparable(self) -> bool:
        """True only for pretrained 2048-d features, the setting of published FID/KID."""
        return self.features == "pretrained" and self.dims == 2048

    @property
    def label(self) -> str:
        if self.features == "random":
            return f"{self.name}, random Inception features ({self.dims}-d) — not comparable to published {self.name}"
        where = f"Inception {_BLOCK_NAMES.get(self.dims, '?')}, {self.dims}-d"
        if self.dims != 2048:
            return f"{self.name} ({where}) — small-set variant, not comparable to published 2048-d {self.name}"
        return f"{self.name} ({where})"

    def _counts(self) -> str:
        return f"n_real={self.n_real}, n_fake={self.n_fake}"


def _check_features(f1: np.ndarray, f2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    f1, f2 = np.asarray(f1, dtype=np.float64), np.asarray(f2, dtype=np.float64)
    if f1.ndim != 2 or f2.ndim != 2 or f1.shape[1] != f2.shape[1]:
        raise ValueError(f"features must be (N, d) arrays of equal d, got {f1.shape} and {f2.shape}")
    if min(len(f1), len(f2)) < 2:
        raise ValueError(f"need at least 2 samples per set, got {len(f1)} and {len(f2)}")
    return f1, f2


def _frechet_distance(mu1: np.ndarray, s1: np.ndarray, mu2: np.ndarray, s2: np.ndarray) -> float:
    """pytorch-fid's ``calculate_frechet_distance``; on SciPy >= 1.18, which removed the ``disp``
    argument it passes to ``sqrtm`` (pytorch-fid 0.3.0 raises TypeError), the same computation."""
    from pytorch_fid.fid_score import calculate_frechet_distance
    from scipy import linalg

    with warnings.catch_warnings():  # SciPy 1.17 deprecates ``disp``: not the caller's concern
        warnings.filterwarnings("ignore", "The `disp` argument", DeprecationWarning)
        try:
            return float(calculate_frechet_distance(mu1, s1, mu2, s2))
        except TypeError as exc:
            if "disp" not in str(exc):
                raise
    covmean = linalg.sqrtm(s1 @ s2)
    if not np.isfinite(covmean).all():  # nearly singular product: pytorch-fid's eps offset
        offset = np.eye(len(s1)) * 1e-6
        covmean = linalg.sqrtm((s1 + offset) @ (s2 + offset))
    if np.iscomplexobj(covmean):
        if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
            raise ValueError(f"Imaginary component {np.max(np.abs(covmean.imag))}")
        covmean = covmean.real
    diff = mu1 - mu2
    return float(diff @ diff + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def fid_from_features(f1: np.ndarray, f2: np.ndarray) -> float:
    """FID between two (N, d) feature arrays (sample mean and covariance, as pytorch-fid)."""
    f1, f2 = _check_features(f1, f2)
    if min(len(f1), len(f2)) <= f1.shape[1]:
        warnings.warn(
            f"FID from {len(f1)} and {len(f2)} samples of {f1.shape[1]}-d features: the covariances "
            f"are rank-deficient and the value is strongly biased; use more images than dims "
            f"(or smaller dims).",
            stacklevel=2,
        )
    s1, s2 = np.atleast_2d(np.cov(f1, rowvar=False)), np.atleast_2d(np.cov(f2, rowvar=False))
    return _frechet_distance(f1.mean(0), s1, f2.mean(0), s2)


def kid_from_features(
    f1: np.ndarray, f2: np.ndarray, subsets: int = 100, subset_size: int = 1000, seed: int = 0
) -> tuple[float, float]:
    """KID (mean, std over subsets) between two (N, d) feature arrays.

    Each subset draws ``m = min(subset_size, N1, N2)`` rows of each set without replacement and
    computes the unbiased MMD^2 estimate (Binkowski et al. 2018, Eq. for MMD_u^2)::

        sum_{i!=j} k(x_i,x_j)/(m(m-1)) + sum_{i!=j} k(y_i,y_j)/(m(m-1)) - 2 sum_{i,j} k(x_i,y_j)/m^2
    """
    f1, f2 = _check_features(f1, f2)
    d, m = f1.shape[1], min(subset_size, len(f1), len(f2))
    rng = np.random.default_rng(seed)
    vals = np.empty(subsets)
    for s in range(subsets):
        x = f1[rng.choice(len(f1), m, replace=False)]
        y = f2[rng.choice(len(f2), m, replace=False)]
        kxx, kyy, kxy = ((x @ x.T / d + 1) ** 3, (y @ y.T / d + 1) ** 3, (x @ y.T / d + 1) ** 3)
        off = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
        vals[s] = off - 2 * kxy.sum() / m**2
    return float(vals.mean()), float(vals.std())


def fid(
    real: Images,
    fake: Images,
    dims: int = 2048,
    features: str = "pretrained",
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int = 50,
) -> MetricResult:
    """FID between two image sets, float (N,C,H,W) in [0,1] with C in {1,3} (or iterables of batches).

    ``features``: "pretrained" (raises :class:`~medsynth.weights.WeightsUnavailable` when the
    weight file is absent), "random" (seeded random Inception, labelled as such) or "auto"
    (pretrained if available, else random; ``result.features`` says which). The 2048-d matrix
    square root takes ~20 s on 2 CPU cores; small sets should use ``dims=64`` or 192.
    """
    f1, kind = inception_features(real, dims, features, seed, device, batch_size)
    f2, _ = inception_features(fake, dims, kind, seed, device, batch_size)
    return MetricResult(fid_from_features(f1, f2), "FID", kind, dims, len(f1), len(f2))


def kid(
    real: Images,
    fake: Images,
    dims: int = 2048,
    features: str = "pretrained",
    seed: int = 0,
    device: torch.device | str | None = None,
    batch_size: int = 50,
    subsets: int = 100,
    subset_size: int = 1000,
) -> MetricResult:
    """KID between two image sets (inputs and ``features`` as :func:`fid`); ``std`` over subsets."""
    f1, kind = inception_features(real, dims, features, seed, device, batch_size)
    f2, _ = inception_features(fake, dims, kind, seed, device, batch_size)
    mean, std = kid_from_features(f1, f2, subsets, subset_size, seed)
    return MetricResult(mean, "KID", kind, dims, len(f1), len(f2), std)
