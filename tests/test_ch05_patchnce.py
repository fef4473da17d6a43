"""PatchNCE (Fundus2Video Eqs. 2-4): a hand-checked value, and a projection head that trains."""

from __future__ import annotations

import math

import pytest
import torch

from medsynth.patchnce import PatchProjector, info_nce, patch_nce_loss


def test_info_nce_hand_checked() -> None:
    # one image, two patches, orthonormal embeddings: positive logit 1, negative 0, self-negative -10
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    tau = 0.07
    loss = info_nce(q, q.clone(), n_images=1, tau=tau)
    expect = -math.log(math.exp(1 / tau) / (math.exp(1 / tau) + math.exp(-10 / tau) + math.exp(0.0)))
    assert loss.shape == (2,)
    assert torch.allclose(loss, torch.full((2,), expect), atol=1e-6)
    # swapping the keys makes the positive the worst match: a large loss
    worse = info_nce(q, q.flip(0), n_images=1, tau=tau)
    assert float(worse.mean()) > 10.0


def test_info_nce_negatives_stay_within_each_image() -> None:
    q = torch.nn.functional.normalize(torch.randn(2 * 3, 4), dim=1)
    both = info_nce(q, q, n_images=2)
    first = info_nce(q[:3], q[:3], n_images=1)
    assert torch.allclose(both[:3], first)


def test_gradient_reaches_the_projection_head_and_a_step_changes_it() -> None:
    torch.manual_seed(0)
    head = PatchProjector([3, 5], nc=8)
    conv = torch.nn.Conv2d(3, 5, 3, padding=1)
    x, y = torch.randn(2, 3, 6, 6), torch.randn(2, 3, 6, 6)
    opt = torch.optim.Adam(head.parameters(), lr=1e-2)
    before = [p.detach().clone() for p in head.parameters()]
    loss = patch_nce_loss([x, conv(x)], [y, conv(y)], head, num_patches=16)
    assert loss.ndim == 0 and torch.isfinite(loss)
    opt.zero_grad()
    loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in head.parameters())
    opt.step()  # (the official code zeroes these gradients right before its step: nothing moves there)
    assert all(not torch.equal(b, p) for b, p in zip(before, head.parameters(), strict=True))


def test_projector_reuses_positions_and_checks_layers() -> None:
    head = PatchProjector([2], nc=4)
    f = torch.randn(1, 2, 4, 4)
    e1, ids = head([f], num_patches=5)
    e2, ids2 = head([f], num_patches=5, ids=ids)
    assert e1[0].shape == (5, 4) and torch.equal(e1[0], e2[0]) and torch.equal(ids[0], ids2[0])
    assert torch.allclose(e1[0].norm(dim=1), torch.ones(5), atol=1e-5)
    with pytest.raises(ValueError):
        head([f, f])
