"""Chapter 04's runs: presets, the pipeline's stages, baselines, and the thesis's claims as data.

The stages (structure generator -> translator + lesion segmenter -> multi-modal generator -> synthetic
set -> quality, Table 5, Table 1 ablation) are functions here; the notebook calls them one by one for
its first seed (to show every intermediate) and :func:`run_seed` runs them all for the preset's other
seeds. :func:`claims` lists what the thesis says that such a run can test.
"""

from __future__ import annotations

import copy
import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from medsynth import evidence, presets
from medsynth.data import make_brain
from medsynth.metrics import dice, fid_from_features, inception_features, kid_from_features, ms_ssim, psnr, ssim
from medsynth.models.structsynth.data import MODALITIES, BrainStructDataset, SegDataset
from medsynth.models.structsynth.experiments import (
    TABLE5,
    modality_contrast,
    predict,
    seg_dice,
    structure_diversity,
    synthesise,
    table5_run,
)
from medsynth.models.structsynth.tasks import STRUCT_WEIGHTS, MultiModalTask, SegTask, StructureGenTask, TranslatorTask
from medsynth.structure import ALG1_DEFAULTS, ALG2_DEFAULTS
from medsynth.training import eval_mode

__all__ = [
    "StructSynthPreset",
    "PRESETS",
    "ABLATION_ROWS",
    "alg1_for",
    "alg2_for",
    "stage_steps",
    "train_structure",
    "contrast_after_pretraining",
    "train_translator_and_segmenter",
    "train_multimodal",
    "Quality",
    "translator_scores",
    "table5",
    "lesion_scores",
    "run_seed",
    "claims",
    "headline",
]

#: Table 1 of the thesis (cumulative rows, as printed): the MultiModalTask switches of each row.
ABLATION_ROWS: dict[str, dict[str, Any]] = {
    "A": dict(input_mode="noise", mask_filter=False, noise_fusion=False, reg_loss=False, les_loss=False),
    "B": dict(mask_filter=False, noise_fusion=False, reg_loss=False, les_loss=True),
    "C": dict(noise_fusion=False, reg_loss=False, les_loss=False),
    "D": dict(reg_loss=False, les_loss=False),
    "E": dict(les_loss=False),
    "F": {},
}


@dataclasses.dataclass(frozen=True)
class StructSynthPreset(presets.Preset):
    """``steps``: the structure generator's iterations; the other stages take ``fractions`` of it
    (translator, lesion segmenter, Eq. 18 pretraining, adversarial). ``t5_epochs``: Table 5 segmenter
    epochs of the real set per row. ``rows``: Table 1 rows trained, at ``ablation_scale`` of the schedule.
    ``weights``: the loss weights ("code": the author's, "printed": all 1). ``latent_stages``: the latent
    matrix is (8, size / 2^k, size / 2^k); the code's is size / 8. ``struct_kl``: a classic VAE KL weight (not
    in the thesis or the code, which use D_z at weight 0.001; the CPU presets need it, see the notebook).
    ``struct_gs``: G_s's D_s-adversarial weight in place of the code's 0.1 (None: the code's). ``cond_every``: G gets
    ``one_hot(i)`` at every decoder level, not only the bottleneck (Sec. 4.3). ``anchor``: Eq. 18 kept in the
    adversarial phase at this multiple of its pretraining weight (the thesis: 0; SkrGAN's weighted sum). Both are
    departures of the CPU presets, measured in the notebook (issue 13 item 4). ``struct_threshold``: where G_s's
    maps are binarised for D_s (Eqs. 10-11) and for synthesis: "density" (the real maps' structure fraction,
    :func:`~medsynth.models.structsynth.tasks.density_threshold`) or a float (0.5: the earlier cut, an ablation).
    ``reg_gate``: Eq. 16 only if G_t beats "copy the input" on the training slices
    (:meth:`MultiModalTask.gate_registration`). ``fresh_adam``: a new Adam for G when Eqs. 13-17 start
    (:meth:`MultiModalTask.start_adversarial`). ``struct_norm`` / ``struct_dense``: E_s's and G_s's normalisation
    and latent code, the author's by default (instance norm, ``ops.norm``; a dense layer between the latent and the
    convolutions, ``VAE_encoder.py`` / ``VAE_decoder.py``); "batch" / False is the earlier ablation, whose
    reconstructions in eval mode were black and whose samples were textures (issue 13 item 3). ``struct_x``: the
    structure stage runs ``struct_x * steps`` iterations (the CPU presets' VAE needs ~960 to reconstruct the skull
    ring; the other stages keep their ``fractions`` of ``steps``)."""

    n_train: int = 2000
    n_test: int = 200
    width: int = 32
    lr: float = 1e-5
    struct_lr: float = 2e-5
    seg_lr: float = 1e-5
    t5_epochs: int = 100
    fractions: tuple[float, float, float, float] = (1.0, 0.5, 1.0, 1.0)
    rows: tuple[str, ...] = tuple(ABLATION_ROWS)
    ablation_scale: float = 1.0
    weights: str = "code"
    latent_stages: int = 3
    struct_kl: float = 0.0
    struct_gs: float | None = None
    cond_every: bool = False
    anchor: float = 0.0
    struct_threshold: str | float = "density"
    reg_gate: bool = True
    fresh_adam: bool = True
    struct_norm: str = "instance"
    struct_dense: bool = True
    struct_x: int = 1


PRESETS: dict[str, StructSynthPreset] = {
    # 64-px phantom slices, narrow networks (width 8; the code's ngf is 64), lr 2e-3 (the thesis's 1e-5 needs 200
    # epochs), a KL weight 0.003 on the structure VAE (0.01 collapsed E_s to the mean map, 0: samples off the
    # aggregate posterior; the notebook's Sec. 4 table), G_s's D_s weight the code's 0.1, Eq. 18 pretraining as
    # long as the structure stage (G needs ~240 steps to use its one-hot condition at all), a short adversarial
    # phase: <= 5 min on 2 CPU cores
    "quick": StructSynthPreset(
        "quick",
        steps=240,
        batch_size=4,
        image_size=64,
        n_seeds=1,
        log_every=12,
        n_train=48,
        n_test=16,
        width=8,
        lr=2e-3,
        struct_lr=2e-3,
        seg_lr=2e-3,
        t5_epochs=4,
        fractions=(1 / 4, 5 / 8, 1.0, 1 / 8),
        rows=("A", "F"),
        ablation_scale=0.5,
        struct_kl=0.003,
        cond_every=True,
        anchor=4.0,
        struct_x=4,
    ),
    # twice the schedule and Table 5 epochs, over 3 seeds: the committed reference run
    "standard": StructSynthPreset(
        "standard",
        steps=480,
        batch_size=4,
        image_size=64,
        n_seeds=3,
        log_every=24,
        n_train=48,
        n_test=16,
        width=8,
        lr=2e-3,
        struct_lr=2e-3,
        seg_lr=2e-3,
        t5_epochs=8,
        fractions=(1 / 4, 5 / 8, 1.0, 1 / 8),
        rows=("A", "F"),
        ablation_scale=0.5,
        struct_kl=0.003,
        cond_every=True,
        anchor=4.0,
        struct_x=2,
    ),
    # Sec. 5.2.1: BRATS-sized 240 px slices, batch 1, Adam 1e-5 (code 2e-5 for the structure generator),
    # 200 epochs per stage (100 for the segmenter), the code's loss weights, no KL
    "full": StructSynthPreset(
        "full", steps=200 * 2000, batch_size=1, image_size=240, n_seeds=1, log_every=500, ckpt_every=5000
    ),
}


def alg1_for(size: int) -> dict[str, Any]:
    """Algorithm 1's settings: the author's BRATS values at every resolution (its min-max normalised Sobel
    maps make alpha a fraction of the edge range; the un-normalised maps needed alpha patched per size)."""
    return dict(ALG1_DEFAULTS)


def alg2_for(size: int) -> dict[str, Any]:
    """Algorithm 2's settings: the code's threshold 0.3 and 5x5 median; its p = 10 px at 184 x 144 slices,
    scaled to ``size`` (an enlargement in pixels is not resolution independent)."""
    return {**ALG2_DEFAULTS, "p": max(1, round(ALG2_DEFAULTS["p"] * size / 184))}


def stage_steps(p: StructSynthPreset) -> dict[str, int]:
    """Iterations of each stage."""
    t, s, pre, adv = (max(1, int(p.steps * f)) for f in p.fractions)
    return {"structure": p.struct_x * p.steps, "translator": t, "segmenter": s, "pretrain": pre, "adversarial": adv}


def train_structure(
    p: StructSynthPreset, train: BrainStructDataset, out: Path, seed: int, device: str = "auto"
) -> tuple[StructureGenTask, list[dict]]:
    """Stage A (Sec. 4.2.2, Fig. 7): the VAE-GAN structure-map generator and G_m."""
    torch.manual_seed(seed)
    weights = dict(STRUCT_WEIGHTS[p.weights])
    if p.struct_gs is not None:
        weights["g_s"] = p.struct_gs
    task = StructureGenTask(
        p.image_size,
        z_ch=8,
        width=p.width,
        stages=p.latent_stages,
        lr=p.struct_lr,
        kl_weight=p.struct_kl,
        weights=weights,
        threshold=p.struct_threshold,
        norm=p.struct_norm,
        dense_latent=p.struct_dense,
    )
    task.real_fraction = float(train.s_struct.float().mean())  # the density D_s's fakes are cut to
    hist = presets.train(task, train, p, Path(out) / "structure", device, seed, steps=stage_steps(p)["structure"])
    task.calibrate_threshold(train.s_struct, seed=seed)  # G_s.threshold on many samples of the trained G_s
    return task, hist


def train_translator_and_segmenter(
    p: StructSynthPreset,
    train: BrainStructDataset,
    test: BrainStructDataset,
    out: Path,
    seed: int,
    device: str = "auto",
) -> dict[str, Any]:
    """Secs. 4.4-4.5: G_t (CycleGAN-style) and G_l (one U-Net for every modality), G_l scored on real test slices."""
    st = stage_steps(p)
    torch.manual_seed(seed)
    trans, seg = TranslatorTask(4, p.width, 3, p.lr), SegTask(1, p.width, 3, p.seg_lr)
    h_t = presets.train(trans, train, p, Path(out) / "translator", device, seed, steps=st["translator"])
    size = p.image_size
    seg_train = SegDataset(train.x01.reshape(-1, 1, size, size) * 2 - 1, train.label.repeat_interleave(4, 0))
    h_s = presets.train(seg, seg_train, p, Path(out) / "lesion_segmenter", device, seed, steps=st["segmenter"])
    d, mse = seg_dice(seg.nets["seg"], test.x01.reshape(-1, 1, size, size) * 2 - 1, test.label.repeat_interleave(4, 0))
    # Eq. 16's gate (reg_gate) is decided on training slices, never on the test set
    gate = translator_scores(trans, train, train)
    return {
        "translator_train": gate,
        "translator": trans,
        "hist_translator": h_t,
        "segmenter": seg,
        "hist_segmenter": h_s,
        "dice_gl": d,
        "mse_gl": mse,
    }


def train_multimodal(
    p: StructSynthPreset,
    struct: StructureGenTask,
    aux: dict[str, Any],
    train: BrainStructDataset,
    out: Path,
    name: str,
    seed: int,
    device: str = "auto",
    scale: float = 1.0,
    pretrained: MultiModalTask | None = None,
    **switches: Any,
) -> tuple[MultiModalTask, list[dict], list[dict]]:
    """Stage B (Sec. 4.3, Fig. 8): Eq. 18 pretraining, then Eqs. 13-17; ``switches`` select a Table 1 row.

    ``pretrained``: a task whose Eq. 18 pretraining this row shares (G and D start from its weights after
    pretraining; the pretraining is the same for every row fed structure maps), so only the adversarial
    phase is run; a row fed noise (row A) always pretrains on its own input."""
    st = stage_steps(p)
    torch.manual_seed(seed)
    task = MultiModalTask(
        struct,
        aux["translator"].nets["G_t"],
        aux["segmenter"].nets["seg"],
        4,
        p.width,
        3,
        p.lr,
        weights=p.weights,
        cond_every=p.cond_every,
        anchor=p.anchor,
        **switches,
    )
    pre, adv = max(1, int(st["pretrain"] * scale)), max(1, int(st["adversarial"] * scale))
    share = pretrained is not None and task.input_mode == "structure" and hasattr(pretrained, "pretrained_state")
    if share:
        for k in ("G", "D"):
            task.nets[k].load_state_dict(pretrained.pretrained_state[k])
        h_pre: list[dict] = []
    else:
        h_pre = presets.train(task, train, p, Path(out) / f"{name}_pretrain", device, seed, steps=pre)
    task.pretrained_state = {k: copy.deepcopy(task.nets[k].state_dict()) for k in ("G", "D")}
    if p.reg_gate and "translator_train" in aux:
        tr = aux["translator_train"]
        task.gate_registration(tr["G_t"]["SSIM"], tr["copy the input"]["SSIM"])
    task.start_adversarial(p.fresh_adam)
    h_adv = presets.train(task, train, p, Path(out) / f"{name}_adversarial", device, seed, steps=adv)
    return task, h_pre, h_adv


def contrast_after_pretraining(mm: MultiModalTask, test: BrainStructDataset, seed: int = 0) -> dict:
    """:func:`modality_contrast` of G as it was at the end of the Eq. 18 pretraining (before Eqs. 13-17)."""
    g = copy.deepcopy(mm.nets["G"])
    g.load_state_dict(mm.pretrained_state["G"])
    probe = copy.copy(mm)
    probe.nets = {**mm.nets, "G": g}
    return modality_contrast(probe, test, seed)


class Quality:
    """Tables 2-3's image-quality columns for synthetic slices, with the same reference for every row.

    MS-SSIM: synthetic slices have no partner, so each is paired with a random real test slice of the same
    modality (pairs drawn with ``seed``). FID/KID: against the real training slices' Inception features
    (``features``: pretrained when the file is present, else the labelled random fallback, always built with
    ``feature_seed`` so that every training seed is scored by the same network).
    """

    def __init__(
        self,
        train: BrainStructDataset,
        test: BrainStructDataset,
        seed: int,
        features: str,
        dims: int,
        feature_seed: int = 0,
    ):
        self.size, self.test, self.seed = train.x01.shape[-1], test, seed
        # one random-feature network for every seed: FIDs of different seeds measure with the same ruler
        self.feat = dict(dims=dims, features=features, seed=feature_seed)
        ref = train.x01.reshape(-1, 1, self.size, self.size)
        self.ref_feats, self.kind = inception_features(ref, **self.feat)
        self.label = f"FID/KID on {self.kind} Inception features ({dims}-d)" + (
            "" if self.kind == "pretrained" and dims == 2048 else " — not comparable to published values"
        )

    def __call__(self, x: torch.Tensor, tag: str) -> dict[str, Any]:
        """``x`` (N, 4, H, W) in [-1, 1]."""
        g = torch.Generator().manual_seed(self.seed)
        a = ((x.reshape(-1, 1, self.size, self.size) + 1) / 2).clamp(0, 1)
        idx = torch.randint(0, len(self.test), (len(x),), generator=g)
        ms = float(ms_ssim(a, self.test.x01[idx].reshape(-1, 1, self.size, self.size)))
        feats, _ = inception_features(a, **self.feat)
        kd = kid_from_features(self.ref_feats, feats, subset_size=min(100, len(a)))
        with warnings.catch_warnings():  # a constant baseline has a singular covariance: FID is still defined
            warnings.simplefilter("ignore")
            f = fid_from_features(self.ref_feats, feats)
        return {
            "run": tag,
            "MS-SSIM": ms,
            "FID": float(f),
            "KID": float(kd[0] if isinstance(kd, tuple) else kd),
            "label": self.label,
        }


def quality_baselines(q: Quality, train: BrainStructDataset, n: int, seed: int, data_root: Any = None) -> dict:
    """Input-free rows of the quality table: the mean training slice, a random training slice, and unseen real
    slices (fresh phantoms, or the real test set) — the ceiling."""
    base = evidence.baseline_predictions(train.x01 * 2 - 1, n, seed=seed)
    rows = {name: q(v, name) for name, v in base.items()}
    size = train.x01.shape[-1]
    fresh = (
        np.stack(
            [[make_brain(seed * 100000 + 90000 + k, (size, size)).images[m] for m in MODALITIES] for k in range(n)]
        )
        if not data_root
        else q.test.x01.numpy()
    )
    rows["unseen real slices"] = q(torch.from_numpy(fresh).float() * 2 - 1, "unseen real slices")
    return rows


@torch.no_grad()
def translator_scores(
    trans: TranslatorTask, train: BrainStructDataset, test: BrainStructDataset
) -> dict[str, dict[str, float]]:
    """G_t on every ordered pair (i -> j, i != j) of the real test slices, scored against the real x_j, beside
    the input-free rows: "copy the input" (x_i itself: the modalities are registered) and the mean training
    slice of modality j."""
    G = trans.nets["G_t"]
    dev = next(G.parameters()).device
    x = test.x01 * 2 - 1
    n, k = x.shape[:2]
    mean01 = train.x01.mean(0, keepdim=True)  # (1, 4, H, W)
    rows: dict[str, list[tuple[float, float]]] = {"G_t": [], "copy the input": [], evidence.BASELINES[0]: []}
    with eval_mode(G):
        for i in range(k):
            for j in range(k):
                if i == j:
                    continue
                fake = G(x[:, i : i + 1].to(dev), torch.full((n,), j, device=dev)).cpu()
                real01, f01, c01 = ((x[:, j : j + 1] + 1) / 2), ((fake + 1) / 2).clamp(0, 1), (x[:, i : i + 1] + 1) / 2
                rows["G_t"].append((float(ssim(f01, real01)), float(psnr(f01, real01))))
                rows["copy the input"].append((float(ssim(c01, real01)), float(psnr(c01, real01))))
                m01 = mean01[:, j : j + 1].expand_as(real01)
                rows[evidence.BASELINES[0]].append((float(ssim(m01, real01)), float(psnr(m01, real01))))
    return {
        name: {"SSIM": float(np.mean([v[0] for v in vals])), "PSNR": float(np.mean([v[1] for v in vals]))}
        for name, vals in rows.items()
    }


def table5(
    p: StructSynthPreset,
    train: BrainStructDataset,
    syn: dict[str, torch.Tensor],
    test: BrainStructDataset,
    out: Path,
    seed: int,
    device: str = "auto",
) -> dict[str, Any]:
    """Sec. 5.6.1 / Table 5 rows (fresh 4-channel segmenters; :data:`TABLE5`, with the "6c" control and the
    conventional-augmentation row 21) and the input-free Dice rows."""
    real_seg, syn_seg = SegDataset(train.x01 * 2 - 1, train.label), SegDataset(syn["x"], syn["label"])
    test_seg = (test.x01 * 2 - 1, test.label)
    rows = []
    for no, rf, sf, ef, mode, t_mse, t_dice in TABLE5:
        r = table5_run(
            real_seg,
            syn_seg,
            test_seg,
            rf,
            sf,
            mode,
            p.t5_epochs,
            Path(out) / "table5" / f"row{no}",
            batch_size=p.batch_size,
            width=p.width,
            depth=3,
            seed=seed,
            device=device,
            lr=p.seg_lr,
            enh_frac=ef,
        )
        rows.append(
            {
                "NO.": no,
                "real": rf,
                "synthetic": sf,
                "enhanced": ef,
                "mode": mode,
                **r,
                "thesis_dice": t_dice,
                "thesis_mse": t_mse,
            }
        )
    base = evidence.baseline_predictions(train.label, len(test.label), seed=seed)
    baselines = {
        name: {"dice": dice(v > 0.5, test.label > 0.5), "mse": float(((v - test.label) ** 2).mean())}
        for name, v in base.items()
    }
    return {"rows": rows, "baselines": baselines}


def lesion_scores(seg: SegTask, s: dict[str, torch.Tensor]) -> tuple[float, float]:
    """(G_l's Dice against the input lesion on synthetic slices, fraction of lesion pixels outside the organ)."""
    size = s["x"].shape[-1]
    pred = predict(seg.nets["seg"], s["x"].reshape(-1, 1, size, size)) > 0.5
    lab = s["label"].repeat_interleave(4, 0) > 0.5
    outside = float((s["label"] * s["m"]).sum() / s["label"].sum().clamp(min=1))
    return dice(pred, lab), outside


def run_seed(
    p: StructSynthPreset,
    seed: int,
    train: BrainStructDataset,
    test: BrainStructDataset,
    out: Path,
    device: str = "auto",
    features: str = "random",
    dims: int = 64,
    data_root: Any = None,
) -> dict[str, Any]:
    """Every stage with one training seed (the data stay those of the notebook); returns the per-seed record."""
    out = Path(out) / f"seed{seed}"
    struct, _ = train_structure(p, train, out, seed, device)
    diversity = structure_diversity(struct, train, test, seed=seed)
    aux = train_translator_and_segmenter(p, train, test, out, seed, device)
    mm, _, _ = train_multimodal(p, struct, aux, train, out, "full", seed, device)
    contrast = modality_contrast(mm, test, seed) if test.tissue is not None else None
    contrast_pre = contrast_after_pretraining(mm, test, seed) if test.tissue is not None else None
    syn = synthesise(mm, train.label, p.n_train, seed=seed + 1)
    q = Quality(train, test, seed, features, dims)
    quality = {"F (full)": q(syn["x"], "F (full)"), **quality_baselines(q, train, p.n_train, seed, data_root)}
    t5 = table5(p, train, syn, test, out, seed, device)
    ablation = {}
    for row in p.rows:
        task = train_multimodal(
            p,
            struct,
            aux,
            train,
            out,
            f"ablation_{row}",
            seed,
            device,
            p.ablation_scale,
            pretrained=mm,
            **ABLATION_ROWS[row],
        )[0]
        s = synthesise(task, train.label, p.n_train, seed=seed + 2)
        les, outside = lesion_scores(aux["segmenter"], s)
        ablation[row] = {**q(s["x"], row), "lesion_dice": les, "lesion_outside": outside}
    return {
        "seed": seed,
        "dice_gl": aux["dice_gl"],
        "translator": translator_scores(aux["translator"], train, test),
        "quality": quality,
        "table5": t5,
        "ablation": ablation,
        "diversity": diversity,
        "contrast": contrast,
        "contrast_pretrain": contrast_pre,
        "reg_on": mm.reg_loss,
        "reg_gated": mm.reg_gated,
    }


def _dice(r: dict, no: int) -> float:
    return next(x["dice"] for x in r["table5"]["rows"] if x["NO."] == no)


def claims(rows: tuple[str, ...], fid_name: str = "FID", contrast: bool = True) -> list[evidence.Claim]:
    """The thesis's Table 5 / Table 1 claims, plus "the models beat the input-free baselines". ``contrast``:
    include the modality-contrast claim (it needs phantom tissue maps; off for real data)."""
    t5 = {row[0]: row[-1] for row in TABLE5}
    mean = evidence.BASELINES[0]
    out = [
        evidence.Claim(
            "synthetic pre-training + 10 % real ≈ 100 % real in Dice (row 6 vs row 1)",
            f"{t5[6]} vs {t5[1]} (Table 5)",
            lambda r: _dice(r, 6) - _dice(r, 1),
            "Dice(row 6) - Dice(row 1)",
            rule="within",
            tol=0.05,
        ),
        evidence.Claim(
            "synthetic data alone is worse than real data (row 3 < row 1)",
            f"{t5[3]} vs {t5[1]} (Table 5)",
            lambda r: _dice(r, 1) - _dice(r, 3),
            "Dice(row 1) - Dice(row 3)",
        ),
        evidence.Claim(
            "row 6's synthetic pre-training beats its 10 % real slices alone (row 6 > control 6c)",
            "implied (Table 5 has no 10 %-alone row)",
            lambda r: _dice(r, 6) - _dice(r, "6c"),
            "Dice(row 6) - Dice(6c)",
        ),
        evidence.Claim(
            "real + synthetic x1 ≈ real + conventional augmentation x1 in Dice (row 15 vs row 21)",
            f"{t5[15]} vs {t5[21]} (Table 5)",
            lambda r: _dice(r, 15) - _dice(r, 21),
            "Dice(row 15) - Dice(row 21)",
            rule="within",
            tol=0.05,
        ),
        evidence.Claim(
            "synthetic first, then all real, beats all real alone (row 25 > row 1)",
            f"{t5[25]} vs {t5[1]} (Table 5)",
            lambda r: _dice(r, 25) - _dice(r, 1),
            "Dice(row 25) - Dice(row 1)",
        ),
        evidence.Claim(
            "real first, then synthetic, loses against all real (row 24 < row 1)",
            f"{t5[24]} vs {t5[1]} (Table 5)",
            lambda r: _dice(r, 1) - _dice(r, 24),
            "Dice(row 1) - Dice(row 24)",
        ),
        evidence.Claim(
            "a segmenter trained on real slices beats the mean training label",
            "implied (not reported)",
            lambda r: _dice(r, 1) - r["table5"]["baselines"][mean]["dice"],
            f"Dice(row 1) - Dice({mean})",
        ),
        evidence.Claim(
            "synthetic slices are closer to real ones than the mean training slice",
            "implied (not reported)",
            lambda r: r["quality"][mean]["FID"] - r["quality"]["F (full)"]["FID"],
            f"{fid_name}({mean}) - {fid_name}(F)",
        ),
        evidence.Claim(
            "generated structure maps vary as much as real ones (pairwise distance within x0.5-2)",
            "implied (Figs. 15-16)",
            lambda r: float(np.log2(max(1e-6, r["diversity"]["pairwise_generated"]) / r["diversity"]["pairwise_real"])),
            "log2(pairwise gen / pairwise real)",
            rule="within",
            tol=1.0,
        ),
        evidence.Claim(
            "G_t translates better than copying the input modality (SSIM)",
            "implied (not reported)",
            lambda r: r["translator"]["G_t"]["SSIM"] - r["translator"]["copy the input"]["SSIM"],
            "SSIM(G_t) - SSIM(copy the input)",
        ),
    ]
    if contrast:
        out.append(
            evidence.Claim(
                "the four synthesized modalities differ as the real ones do (tissue-contrast error "
                "below the best same-for-every-modality answer)",
                "implied (Fig. 17)",
                lambda r: r["contrast"]["error_same"] - r["contrast"]["error"],
                "error(same) - error(G)",
            )
        )
    if "A" in rows and "F" in rows:
        out.append(
            evidence.Claim(
                "the full model F beats row A (noise instead of structure maps) in FID",
                "F best in Fig. 14 (bar chart, no numbers)",
                lambda r: r["ablation"]["A"]["FID"] - r["ablation"]["F"]["FID"],
                f"{fid_name}(A) - {fid_name}(F)",
            )
        )
    return out


def headline(metrics: dict[str, Any]) -> dict[str, Any]:
    """The course summary's line: the full model's (row F) FID beside the best input-free baseline's, from this
    run's ``mean_over_seeds`` (random Inception features here, so not comparable to a paper's FID)."""
    rows = metrics["mean_over_seeds"]["fid"]
    return evidence.headline(metrics.get("fid_label", "FID").split(" —")[0], False, "F (full)", rows, "—")
