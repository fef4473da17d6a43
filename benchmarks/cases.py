"""What `make bench` times: every chapter's main model and its trained baselines, at a preset's resolution.

A :class:`Case` holds a task built exactly as the chapter's run module builds it for the preset (``quick``: the
notebook's resolution and widths; ``full``: the paper's), one batch of the right keys and shapes, and the
inference call the chapter uses (the generator in eval mode). Batches are random tensors of the dataset's
shapes, except chapter 04's, which come from :class:`BrainStructDataset` (its structure maps and masks are
binary and shaped by Algorithms 1/2; random maps would make different masks). VGG terms use random VGG19
features (``vgg_features="random"``): the same FLOPs and time as the pretrained file, which a benchmark does
not need. The batch size defaults to 1 on the CPU (the issue's measurements) and the preset's on a GPU.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import torch

CHAPTERS = ("01", "02", "03", "04", "05")
SETTINGS = ("quick", "full")
#: Model names per chapter in :func:`build` order (so a caller can list cases without building networks).
CASE_NAMES = {
    "01": ["pix2pix", "pix2pixHD", "Fundus2Angio"],
    "02": ["MedGAN", "pix2pix"],
    "03": ["RetiGAN", "vessel segmenter"],
    "04": ["multi-modal G (adversarial)", "structure VAE-GAN", "translator G_t"],
    "05": ["Fundus2Video"],
}


@dataclasses.dataclass
class Case:
    chapter: str
    model: str
    role: str  # "main" or "baseline"
    setting: str  # preset name
    size: int  # image side (px)
    batch: int  # images per batch
    task: Any  # a medsynth GANTask
    data: dict[str, torch.Tensor]
    infer: Callable[[Any, dict[str, torch.Tensor]], Any]
    note: str = ""

    @property
    def key(self) -> str:
        return f"{self.chapter}/{self.model}/{self.setting}"


def _pair(b: int, size: int, cin: int, cout: int, g: torch.Generator) -> dict[str, torch.Tensor]:
    return {
        "src": torch.rand(b, cin, size, size, generator=g) * 2 - 1,
        "dst": torch.rand(b, cout, size, size, generator=g) * 2 - 1,
    }


def _gen(task: Any, data: dict[str, torch.Tensor]) -> Any:
    return task.generate(data["src"])


def ch01(setting: str, batch: int | None) -> list[Case]:
    from medsynth.models import fundus2angio_run as run

    p = run.PRESETS[setting]
    b = batch or p.batch_size
    tasks = run.build_tasks(p, 0, "random")
    g = torch.Generator().manual_seed(0)
    roles = {"pix2pix": "baseline", "pix2pixHD": "baseline", "Fundus2Angio": "main"}
    out = []
    for name, task in tasks.items():
        draws = 3 if name == "Fundus2Angio" else 1  # two D iterations + the generators draw a batch each
        note = "a step draws 3 batches (2 D iterations + G, train.py)" if draws == 3 else ""
        out.append(
            Case(
                "01",
                name,
                roles[name],
                setting,
                p.image_size,
                b,
                task,
                _pair(b * draws, p.image_size, 3, 1, g),
                lambda t, d, n=b: t.generate(d["src"][:n]),
                note,
            )
        )
    return out


def ch02(setting: str, batch: int | None) -> list[Case]:
    from medsynth.models import medgan_run as run

    p = run.PRESETS[setting]
    b = batch or p.batch_size
    tasks = run.build_tasks(p, 0, "random")
    g = torch.Generator().manual_seed(0)
    return [
        Case(
            "02",
            name,
            "main" if name == "MedGAN" else "baseline",
            setting,
            p.image_size,
            b,
            tasks[name],
            _pair(b, p.image_size, 1, 1, g),
            _gen,
            f"{p.n_blocks} U-blocks" if name == "MedGAN" else "",
        )
        for name in ("MedGAN", "pix2pix")
    ]


def ch03(setting: str, batch: int | None) -> list[Case]:
    from medsynth.models import retigan_run as run
    from medsynth.models import vessel_segmenter as vseg

    p = run.PRESETS[setting]
    b = batch or p.batch_size
    g = torch.Generator().manual_seed(0)
    s = p.image_size
    data = {
        "src": (torch.rand(b, 2, s, s, generator=g) > 0.5).float() * 2 - 1,
        "dst": torch.rand(b, 3, s, s, generator=g) * 2 - 1,
        "dst_smooth": torch.rand(b, 3, s, s, generator=g) * 2 - 1,
    }
    seg = vseg.SegmenterTask(vseg.build(p.seg_width, seed=0))
    bs = batch or p.seg_batch
    seg_data = {
        "image": torch.rand(bs, 3, s, s, generator=g) * 2 - 1,
        "vessels": (torch.rand(bs, 1, s, s, generator=g) > 0.8).float(),
    }
    return [
        Case("03", "RetiGAN", "main", setting, s, b, run.build_task(p, 0, "random"), data, _gen),
        Case(
            "03",
            "vessel segmenter",
            "baseline",
            setting,
            s,
            bs,
            seg,
            seg_data,
            lambda t, d: t.nets["seg"](d["image"]),
            "U-Net, BCE + Dice; the downstream test's segmenter",
        ),
    ]


def ch04(setting: str, batch: int | None) -> list[Case]:
    from medsynth.models import structsynth_run as run
    from medsynth.models.structsynth.data import BrainStructDataset
    from medsynth.models.structsynth.tasks import MultiModalTask, SegTask, StructureGenTask, TranslatorTask

    p = run.PRESETS[setting]
    b = batch or p.batch_size
    ds = BrainStructDataset(range(b), p.image_size, run.alg1_for(p.image_size), run.alg2_for(p.image_size))
    data = torch.utils.data.default_collate([ds[i] for i in range(b)])
    torch.manual_seed(0)

    def struct_task() -> StructureGenTask:
        return StructureGenTask(
            p.image_size, z_ch=8, width=p.width, stages=p.latent_stages, lr=p.struct_lr, kl_weight=p.struct_kl
        )

    struct, trans, seg = struct_task(), TranslatorTask(4, p.width, 3, p.lr), SegTask(1, p.width, 3, p.seg_lr)
    # the multi-modal task freezes the networks it is given, so it gets its own structure generator
    mm = MultiModalTask(
        struct_task(),
        TranslatorTask(4, p.width, 3, p.lr).nets["G_t"],
        seg.nets["seg"],
        4,
        p.width,
        3,
        p.lr,
        weights=p.weights,
        phase="adversarial",
    )
    fused = lambda t, d: t.generate(t.fuse(d["s_struct"], d["m_struct"], d["label"]))  # noqa: E731
    z = lambda t, d: t.generate(torch.randn(len(d["x"]), *t.z_shape))  # noqa: E731
    return [
        Case(
            "04",
            "multi-modal G (adversarial)",
            "main",
            setting,
            p.image_size,
            b,
            mm,
            data,
            fused,
            "Eqs. 13-17, frozen G_s/G_m/G_t/G_l; generates 4 modalities",
        ),
        Case("04", "structure VAE-GAN", "main", setting, p.image_size, b, struct, data, z, "stage A (Fig. 7)"),
        Case(
            "04",
            "translator G_t",
            "baseline",
            setting,
            p.image_size,
            b,
            trans,
            data,
            lambda t, d: t.nets["G_t"](d["x"][:, 3:4], torch.zeros(len(d["x"]), dtype=torch.long)),
        ),
    ]


def ch05(setting: str, batch: int | None, windows: int | None = None) -> list[Case]:
    from medsynth.models import fundus2video as f2v
    from medsynth.models import fundus2video_run as run

    p = run.PRESETS[setting]
    b = batch or p.batch_size
    cfg = {**p.model_cfg, "vgg_features": "random" if p.model_cfg.get("vgg_features", "off") != "off" else "off"}
    note = ""
    if windows is not None:
        cfg["windows_per_step"] = windows
        note = f"{windows} window(s) per step; the preset's step walks {p.model_cfg.get('windows_per_step') or 12}"
    task = f2v.Fundus2VideoTask(**cfg, seed=0)
    g = torch.Generator().manual_seed(0)
    s = p.image_size
    data = {
        "src": torch.rand(b, 3, s, s, generator=g) * 2 - 1,
        "frames": torch.rand(b, 12, 1, s, s, generator=g) * 2 - 1,
        "km": (torch.rand(b, 1, s, s, generator=g) > 0.7).float(),
        "lesion": (torch.rand(b, 1, s, s, generator=g) > 0.9).float(),
    }

    def one_window(t: Any, d: dict[str, torch.Tensor]) -> Any:  # G(CF, previous window): one autoregressive step
        return t.nets["G"](d["src"], d["frames"][:, : f2v.WINDOW, 0])

    return [
        Case(
            "05",
            "Fundus2Video",
            "main",
            setting,
            s,
            b,
            task,
            data,
            one_window,
            (note + "; " if note else "") + "inference = one window",
        )
    ]


def build(chapter: str, setting: str, batch: int | None = None, f2v_windows: int | None = None) -> list[Case]:
    """The cases of one chapter at one preset."""
    if chapter == "05":
        return ch05(setting, batch, f2v_windows)
    return {"01": ch01, "02": ch02, "03": ch03, "04": ch04}[chapter](setting, batch)
