"""Knowledge mask of Fundus2Video (Sec. 2.2): values on constructed frames, scores, sweep, explorer view."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from medsynth.knowledge import KM_THRESHOLD, knowledge_mask, knowledge_view, mask_scores, threshold_sweep


def test_threshold_is_strict_and_on_the_8bit_scale() -> None:
    first = np.zeros((2, 4), np.float32)
    last = np.array([[44, 45, 46, 200], [0, 255, 45.4, 45.6]], np.float32) / 255  # 45.4 rounds to 45, 45.6 to 46
    m = knowledge_mask(first, last)
    assert KM_THRESHOLD == 45
    assert m.tolist() == [[False, False, True, True], [False, True, False, True]]
    # a decrease counts like an increase (absolute difference)
    assert knowledge_mask(last, first).tolist() == m.tolist()


def test_green_channel_only_numpy_and_torch() -> None:
    first = np.zeros((3, 3, 3), np.float32)
    last = first.copy()
    last[..., 0] = 1.0  # red changes everywhere: ignored
    last[1, 1, 1] = 1.0  # green changes at the centre only
    m = knowledge_mask(first, last)
    assert m.shape == (3, 3) and m.sum() == 1 and m[1, 1]
    t0 = torch.from_numpy(first).permute(2, 0, 1)[None] * 2 - 1  # (1,3,H,W) in [-1,1]
    t1 = torch.from_numpy(last).permute(2, 0, 1)[None] * 2 - 1
    mt = knowledge_mask(t0, t1, value_range=(-1.0, 1.0))
    assert mt.shape == (1, 1, 3, 3) and mt.dtype == torch.bool
    assert np.array_equal(mt[0, 0].numpy(), m)


def test_mask_scores_by_hand() -> None:
    pred = np.array([[1, 1, 0, 0]], bool)
    true = np.array([[0, 1, 1, 0]], bool)
    s = mask_scores(pred, true)
    assert (s.iou, s.precision, s.recall, s.dice, s.area) == pytest.approx((1 / 3, 0.5, 0.5, 0.5, 0.5))
    empty = mask_scores(np.zeros((2, 2), bool), np.zeros((2, 2), bool))
    assert empty.iou == 1.0 and empty.precision == 1.0 and empty.recall == 1.0
    with pytest.raises(ValueError):
        mask_scores(pred, true.T)


def test_threshold_sweep_is_monotone_and_matches_single_scores() -> None:
    rng = np.random.default_rng(0)
    pairs = []
    for _ in range(3):
        f0 = rng.uniform(0, 0.3, (16, 16)).astype(np.float32)
        true = np.zeros((16, 16), bool)
        true[4:10, 4:10] = True
        f1 = f0 + true * 0.4 + rng.uniform(0, 0.15, (16, 16))
        pairs.append((f0, np.clip(f1, 0, 1), true))
    r = threshold_sweep(pairs, thresholds=[10, 45, 90, 200])
    assert np.all(np.diff(r["area"]) <= 0) and np.all(np.diff(r["recall"]) <= 1e-12)
    i = list(r["threshold"]).index(45)
    expect = np.mean([mask_scores(knowledge_mask(a, b), t).iou for a, b, t in pairs])
    assert r["iou"][i] == pytest.approx(expect)
    assert r["recall"][-1] == 0.0  # nothing differs by more than 200/255


def test_knowledge_view_reports_the_same_iou() -> None:
    frames = np.zeros((4, 8, 8), np.float32)
    frames[-1, 2:5, 2:5] = 0.8
    true = np.zeros((8, 8), bool)
    true[2:6, 2:6] = True
    img, s, cap = knowledge_view(frames, true, threshold=45, first=0, last=-1)
    assert img.shape == (8, 40, 3) and 0 <= img.min() and img.max() <= 1
    assert s.iou == pytest.approx(9 / 16) and "IoU 0.562" in cap
    _, s2, _ = knowledge_view(frames, true, threshold=45, first=0, last=1)  # identical frames: empty mask
    assert s2.area == 0.0 and s2.recall == 0.0


def test_knowledge_view_scores_against_the_leakage_of_the_frame_the_last_slider_picks() -> None:
    frames = np.zeros((4, 8, 8), np.float32)
    frames[2, 0:3, 0:3] = 0.8  # frame 2 differs from frame 0 top-left ...
    frames[3, 4:8, 4:8] = 0.8  # ... frame 3 bottom-right
    leak = np.zeros((4, 8, 8), bool)
    leak[2, 0:3, 0:3] = True
    leak[3, 4:8, 4:8] = True
    _, s2, _ = knowledge_view(frames, leak, threshold=45, first=0, last=2)
    _, s3, _ = knowledge_view(frames, leak, threshold=45, first=0, last=-1)
    assert s2.iou == pytest.approx(1.0) and s3.iou == pytest.approx(1.0)
    _, fixed, _ = knowledge_view(frames, leak[-1], threshold=45, first=0, last=2)  # one mask: always the last
    assert fixed.iou == 0.0
    with pytest.raises(ValueError, match="frames"):
        knowledge_view(frames, leak[:3], threshold=45)


@pytest.mark.parametrize("threshold", [KM_THRESHOLD, 10.0, 100.0])
def test_numpy_and_torch_paths_agree_at_the_boundary(threshold: float) -> None:
    """Both paths quantise to 8 bits and threshold strictly, at any threshold, on 8-bit inputs (what the files hold;
    exact half-grey-levels can round differently after the [-1, 1] scaling's float error, so none are used)."""
    g = np.random.default_rng(0)
    first = g.integers(0, 256 - 120, (16, 16)).astype(np.float32)
    delta = g.choice([threshold - 1, threshold, threshold + 1, threshold + 2, 0.0], (16, 16))
    last = (first + delta).astype(np.float32)
    m_np = knowledge_mask(first / 255, last / 255, threshold)
    m_t = knowledge_mask(
        torch.from_numpy(first / 127.5 - 1)[None, None],
        torch.from_numpy(last / 127.5 - 1)[None, None],
        threshold,
        value_range=(-1.0, 1.0),
    )
    assert np.array_equal(m_t[0, 0].numpy(), m_np)
    exact = delta == threshold
    assert exact.any() and not m_np[exact].any()  # equal to the threshold: not marked (strict >)
    assert m_np[delta == threshold + 1].all() and not m_np[delta == threshold - 1].any()
