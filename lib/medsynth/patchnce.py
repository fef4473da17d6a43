"""PatchNCE: patch-wise contrastive loss (Park et al. 2020, CUT) with a projection head that TRAINS.

Fundus2Video (05_fundus2video Sec. 2.3.2) builds its mask-enhanced losses on InfoNCE, Eq. 2::

    l(v, v+, v-) = -log( exp(v.v+/tau) / (exp(v.v+/tau) + sum_n exp(v.v-_n/tau)) ),  tau = 0.07

where ``v`` is the embedding of a patch of the generated image (the anchor, "query"), ``v+`` the
embedding of the patch at the same place in the other image (the CF photo for the unsupervised
loss, Eq. 3; the ground-truth frame for the supervised loss, Eq. 4), and ``v-`` the embeddings of
the other sampled patches of that image. Embeddings come from encoder features at several layers,
sampled at 256 random positions per layer and passed through a 2-layer MLP per layer, then
L2-normalised (CUT's ``PatchSampleF(use_mlp=True, nc=256)``).

The official Fundus2Video code creates that MLP lazily and gives it its own optimiser, but in the
training loop calls ``optimizer_F.zero_grad()`` immediately before ``optimizer_F.step()``: the
gradients are wiped, so the projection head never trains (a random fixed projection). Here the head
is an ordinary module built eagerly, whose parameters go into the generator's optimiser, and a test
checks that a step changes them.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["PatchProjector", "info_nce", "patch_nce_loss", "NCE_TEMPERATURE", "NUM_PATCHES"]

NCE_TEMPERATURE = 0.07  # tau (CUT's nce_T; the paper's Eq. 2)
NUM_PATCHES = 256  # patches per layer (CUT's num_patches; the issue and official code)


def _l2n(x: torch.Tensor) -> torch.Tensor:
    # CUT's Normalize(2) adds 1e-7 before squaring to keep the gradient finite at 0; same idea here.
    return x / (x.pow(2).sum(-1, keepdim=True) + 1e-14).sqrt()


class PatchProjector(nn.Module):
    """Sample patch features and project them: one ``Linear(C, nc) -> ReLU -> Linear(nc, nc)`` per layer.

    ``channels``: the channel count of each tapped feature map (known up front, so the head is
    built eagerly and its parameters can join an optimiser before the first step).
    ``forward(feats, num_patches, ids=None) -> (embeddings, ids)``: each embedding is
    (N * P, nc), L2-normalised; pass the returned ``ids`` to embed the paired image at the same
    positions. ``ids`` are drawn with ``torch.randperm`` from the global generator (seeded runs).
    """

    def __init__(self, channels: Sequence[int], nc: int = 256, init_std: float = 0.02) -> None:
        super().__init__()
        self.mlps = nn.ModuleList(
            nn.Sequential(nn.Linear(c, nc), nn.ReLU(inplace=True), nn.Linear(nc, nc)) for c in channels
        )
        for m in self.modules():  # CUT init_net('normal', 0.02)
            if isinstance(m, nn.Linear):
                nn.init.normal_(m.weight, 0.0, init_std)
                nn.init.zeros_(m.bias)

    def forward(
        self, feats: Sequence[torch.Tensor], num_patches: int = NUM_PATCHES, ids: Sequence[torch.Tensor] | None = None
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        if len(feats) != len(self.mlps):
            raise ValueError(f"{len(feats)} feature maps for {len(self.mlps)} projection MLPs")
        out, out_ids = [], []
        for k, (f, mlp) in enumerate(zip(feats, self.mlps, strict=True)):
            flat = f.flatten(2).transpose(1, 2)  # (N, H*W, C)
            if ids is None:
                idx = torch.randperm(flat.shape[1], device=f.device)[: min(num_patches, flat.shape[1])]
            else:
                idx = ids[k]
            out.append(_l2n(mlp(flat[:, idx].flatten(0, 1).float())))
            out_ids.append(idx)
        return out, out_ids


def info_nce(q: torch.Tensor, k: torch.Tensor, n_images: int, tau: float = NCE_TEMPERATURE) -> torch.Tensor:
    """Eq. 2 for every patch: query ``q[i]`` against its positive ``k[i]`` and the negatives ``k[j]``,
    ``j != i``, of the SAME image (CUT with ``nce_includes_all_negatives_from_minibatch=False``).

    ``q``, ``k``: (N * P, D) L2-normalised embeddings, image-major. The key is detached (CUT):
    gradients flow through the query path only. Returns the per-patch losses (N * P,).
    The diagonal of the negative logits is filled with -10 before dividing by tau, as CUT does,
    so the positive is not counted twice.
    """
    k = k.detach()
    d = q.shape[-1]
    l_pos = (q * k).sum(-1, keepdim=True)  # (NP, 1)
    qb, kb = q.view(n_images, -1, d), k.view(n_images, -1, d)
    p = qb.shape[1]
    l_neg = torch.bmm(qb, kb.transpose(1, 2))  # (N, P, P)
    eye = torch.eye(p, dtype=torch.bool, device=q.device)[None]
    l_neg = l_neg.masked_fill(eye, -10.0).view(-1, p)
    logits = torch.cat([l_pos, l_neg], 1) / tau
    return F.cross_entropy(logits, torch.zeros(len(logits), dtype=torch.long, device=q.device), reduction="none")


def patch_nce_loss(
    feat_q: Sequence[torch.Tensor],
    feat_k: Sequence[torch.Tensor],
    head: PatchProjector,
    num_patches: int = NUM_PATCHES,
    tau: float = NCE_TEMPERATURE,
) -> torch.Tensor:
    """PatchNCE over layers: sample positions on the key image, embed both images there, mean of
    Eq. 2 over patches, averaged over layers (CUT's ``calculate_NCE_loss``).

    ``feat_q``: features of the generated image (anchor); ``feat_k``: of the positive's image (the
    CF photo for Eq. 3, the ground truth for Eq. 4). Masking (the "mask-enhanced" part) is done on
    the images before encoding, by the caller.
    """
    n = feat_q[0].shape[0]
    k_emb, ids = head(feat_k, num_patches)
    q_emb, _ = head(feat_q, num_patches, ids)
    return sum(info_nce(q, k, n, tau).mean() for q, k in zip(q_emb, k_emb, strict=True)) / len(q_emb)
