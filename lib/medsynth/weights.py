"""Pretrained networks: where their weights come from, and a clear error when they are absent.

One registry table (:data:`REGISTRY`) names every weight file the course uses, its source URL and
its place in the standard torch cache, ``torch.hub.get_dir()/checkpoints/<file>`` (so
``$TORCH_HOME/hub/checkpoints``, the same place pytorch-fid and torchvision look). A file is taken
from the cache when present and downloaded when the network allows (short socket timeout; set
``MEDSYNTH_OFFLINE=1`` to never try). When neither works, :class:`WeightsUnavailable` says which
file is missing, where it comes from and the exact path to put it in -- within seconds.

The random-feature fallback is never silent: it happens only when the caller passes
``features="random"``, or ``features="auto"``, in which case the returned network carries
``features_kind == "random"`` and a warning is issued. Numbers computed with random features
are not comparable to published ones (the metrics label them so).
"""

from __future__ import annotations

import hashlib
import os
import socket
import threading
import urllib.parse
import urllib.request
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import torch
from torch import nn

__all__ = [
    "WeightsUnavailable",
    "WeightSpec",
    "REGISTRY",
    "cache_path",
    "fetch",
    "available",
    "load_inception",
    "load_vgg19",
    "load_lpips_backbone",
    "load_lpips_linear",
    "load_i3d",
    "with_fallback",
    "features_for",
    "FEATURE_CHOICES",
    "DOWNLOAD_TIMEOUT_S",
]

DOWNLOAD_TIMEOUT_S = 5.0  # socket timeout of one download attempt (and of the DNS lookup)
FEATURE_CHOICES = ("pretrained", "random", "auto")


class WeightsUnavailable(RuntimeError):
    """A pretrained weight file is neither in the torch cache nor downloadable."""


@dataclass(frozen=True)
class WeightSpec:
    """One row of the registry: a weight file, its source and what uses it."""

    name: str
    file: str
    url: str
    used_for: str
    sha256_prefix: str | None = None  # checked after a download when known (torchvision naming)


REGISTRY: dict[str, WeightSpec] = {
    s.name: s
    for s in (
        WeightSpec(
            "inception",
            "pt_inception-2015-12-05-6726825d.pth",
            "https://github.com/mseitzer/pytorch-fid/releases/download/fid_weights/"
            "pt_inception-2015-12-05-6726825d.pth",
            "FID/KID (pytorch-fid InceptionV3, TF-FID port)",
        ),
        WeightSpec(
            "vgg19",
            "vgg19-dcbfe0ab.pth",
            "https://download.pytorch.org/models/vgg19-dcbfe0ab.pth",
            "VGG19 perceptual/style/content losses (torchvision IMAGENET1K_V1)",
            "dcbfe0ab",
        ),
        # LPIPS backbones + linear layers and I3D for FVD (loaders at the end of this module; chapter 05).
        WeightSpec(
            "alexnet",
            "alexnet-owt-7be5be79.pth",
            "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth",
            "LPIPS (alex) backbone, torchvision IMAGENET1K_V1",
            "7be5be79",
        ),
        WeightSpec(
            "vgg16",
            "vgg16-397923af.pth",
            "https://download.pytorch.org/models/vgg16-397923af.pth",
            "LPIPS (vgg) backbone, torchvision IMAGENET1K_V1",
            "397923af",
        ),
        WeightSpec(
            "lpips_alex",
            "lpips_v0.1_alex.pth",
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/alex.pth",
            "LPIPS v0.1 linear layers (alex)",
        ),
        WeightSpec(
            "lpips_vgg",
            "lpips_v0.1_vgg.pth",
            "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
            "LPIPS v0.1 linear layers (vgg)",
        ),
        WeightSpec(
            "i3d",
            "i3d_torchscript.pt",
            "https://www.dropbox.com/s/ge9e5ujwgetktms/i3d_torchscript.pt?dl=1",
            "FVD (StyleGAN-V's TorchScript I3D port)",
        ),
    )
}


def cache_path(name: str) -> Path:
    """Where the weight file of registry entry ``name`` lives: ``torch.hub.get_dir()/checkpoints/<file>``."""
    return Path(torch.hub.get_dir()) / "checkpoints" / _spec(name).file


def _spec(name: str) -> WeightSpec:
    if name not in REGISTRY:
        raise KeyError(f"unknown weights {name!r}; known: {sorted(REGISTRY)}")
    return REGISTRY[name]


def _offline() -> bool:
    return os.environ.get("MEDSYNTH_OFFLINE", "").strip().lower() not in ("", "0", "false", "no")


def _check_resolves(host: str, timeout: float) -> None:
    """DNS lookup with a deadline (``getaddrinfo`` ignores socket timeouts and can hang offline)."""
    err: list[OSError] = []

    def lookup() -> None:
        try:
            socket.getaddrinfo(host, 443)
        except OSError as exc:
            err.append(exc)

    t = threading.Thread(target=lookup, daemon=True)
    t.start()
    t.join(timeout)
    if t.is_alive():
        raise OSError(f"no answer resolving {host} within {timeout:g} s")
    if err:
        raise OSError(f"cannot resolve {host}: {err[0]}")


def _download(spec: WeightSpec, dest: Path, timeout: float) -> None:
    """Download to a temporary file beside ``dest``, check the hash prefix if known, then rename."""
    host = urllib.parse.urlsplit(spec.url).hostname
    if host:  # file:// URLs (tests, local mirrors) have none
        _check_resolves(host, timeout)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + f".part{os.getpid()}")
    sha = hashlib.sha256()
    try:
        with urllib.request.urlopen(spec.url, timeout=timeout) as resp, open(tmp, "wb") as fh:
            while chunk := resp.read(1 << 20):
                sha.update(chunk)
                fh.write(chunk)
        if spec.sha256_prefix and not sha.hexdigest().startswith(spec.sha256_prefix):
            raise OSError(f"sha256 {sha.hexdigest()[:12]}... does not start with {spec.sha256_prefix}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def fetch(name: str, download: bool | None = None) -> Path:
    """Return the cached path of weight file ``name``, downloading it first if needed and allowed.

    ``download=None`` means "unless ``MEDSYNTH_OFFLINE=1``". Raises :class:`WeightsUnavailable`
    (naming the file, its URL and the cache path) when the file is absent and cannot be fetched.
    """
    spec, path = _spec(name), cache_path(name)
    if path.is_file():
        return path
    allowed = (not _offline()) if download is None else download
    reason = "downloads are off (MEDSYNTH_OFFLINE=1)" if _offline() and download is None else "download=False"
    if allowed:
        try:
            _download(spec, path, DOWNLOAD_TIMEOUT_S)
            return path
        except (OSError, ValueError) as exc:  # URLError, socket.timeout and HTTP errors are OSErrors
            reason = f"download failed: {exc}"
    raise WeightsUnavailable(
        f"Pretrained weights '{spec.file}' ({spec.used_for}) are not available: {reason}.\n"
        f"  Download it from {spec.url}\n"
        f"  and put it at {path}\n"
        f"  (the torch cache: torch.hub.get_dir()/checkpoints, i.e. $TORCH_HOME/hub/checkpoints),\n"
        f"  e.g. curl -L --create-dirs -o '{path}' '{spec.url}'\n"
        f"  Or pass features='random' for the documented random-feature fallback "
        f"(its numbers are labelled and not comparable to published ones)."
    )


def _load_state(name: str, download: bool | None = None) -> dict[str, torch.Tensor]:
    path = fetch(name, download)
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # truncated or foreign file: say which, and what to do
        raise WeightsUnavailable(
            f"Weight file {path} could not be read ({exc}); delete it and download {_spec(name).url} again."
        ) from exc


def available() -> list[dict]:
    """One row per registry entry (name, file, present, path, url, used_for), for a setup table."""
    return [
        dict(
            name=s.name,
            file=s.file,
            present=cache_path(s.name).is_file(),
            path=str(cache_path(s.name)),
            url=s.url,
            used_for=s.used_for,
        )
        for s in REGISTRY.values()
    ]


def features_for(*names: str, download: bool | None = None) -> str:
    """ "pretrained" when every named weight file is in the cache (or downloadable), else "random".

    What a chapter passes as ``features=`` to its metrics and losses: real weights whenever present, in every
    preset; the documented random-feature fallback, chosen explicitly and labelled, only when they are not.
    """
    try:
        for n in names:
            fetch(n, download=download)
    except WeightsUnavailable:
        return "random"
    return "pretrained"


def _check_features(features: str) -> None:
    if features not in FEATURE_CHOICES:
        raise ValueError(f"features must be one of {FEATURE_CHOICES}, got {features!r}")


T = TypeVar("T")


def with_fallback(build: Callable[[str], T], features: str, what: str, stacklevel: int = 3) -> T:
    """``build(features)``, where "auto" means: ``build("pretrained")``, and when that raises
    :class:`WeightsUnavailable`, ``build("random")`` with a warning naming ``what``.

    The one place where "auto" is resolved, so every metric falls back the same loud, labelled way.
    ``build`` may be a cached factory: "auto" is resolved on every call, so a weight file put in the
    cache mid-session is picked up.
    """
    _check_features(features)
    if features != "auto":
        return build(features)
    try:
        return build("pretrained")
    except WeightsUnavailable as exc:
        warnings.warn(
            f"features='auto': using RANDOM {what} features; results are labelled 'random' and are "
            f"not comparable to published ones. {exc}",
            stacklevel=stacklevel,
        )
        return build("random")


def _resolve(name: str, features: str) -> tuple[str, dict[str, torch.Tensor] | None]:
    """Map ``features`` to ("pretrained", state) or ("random", None); "auto" falls back loudly."""
    return with_fallback(
        lambda kind: (kind, _load_state(name) if kind == "pretrained" else None), features, name, stacklevel=4
    )


def _freeze(net: nn.Module, kind: str, device: torch.device | str | None) -> nn.Module:
    net.eval().requires_grad_(False)
    net.features_kind = kind  # read by medsynth.metrics to label results
    return net.to(device) if device is not None else net


def _fid_backbone() -> nn.Module:
    """pytorch-fid's ``fid_inception_v3`` architecture without its unconditional download."""
    from pytorch_fid import inception as pi

    net = pi._inception_v3(num_classes=1008, aux_logits=False, weights=None)
    net.Mixed_5b = pi.FIDInceptionA(192, pool_features=32)
    net.Mixed_5c = pi.FIDInceptionA(256, pool_features=64)
    net.Mixed_5d = pi.FIDInceptionA(288, pool_features=64)
    net.Mixed_6b = pi.FIDInceptionC(768, channels_7x7=128)
    net.Mixed_6c = pi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d = pi.FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6e = pi.FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b = pi.FIDInceptionE_1(1280)
    net.Mixed_7c = pi.FIDInceptionE_2(2048)
    return net


_BUILD_LOCK = threading.Lock()


def _reinit_random(net: nn.Module, seed: int) -> None:
    """Seeded Kaiming-normal (fan_in) convs and identity BatchNorm, so features have spread.

    PyTorch's default init in pytorch-fid's Inception gives pool features near 1e-8 and FID ~0
    for any two sets; this re-initialisation keeps activations at unit scale through the depth.
    Modules are visited in network order, so the first blocks get the same weights for any ``dims``.
    """
    gen = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, (2.0 / m.weight[0].numel()) ** 0.5, generator=gen)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            m.reset_parameters()  # weight 1, bias 0, running mean 0, running var 1


def load_inception(
    dims: int = 2048, features: str = "pretrained", seed: int = 0, device: torch.device | str | None = None
) -> nn.Module:
    """pytorch-fid's :class:`InceptionV3` up to the block giving ``dims`` features (64, 192, 768, 2048).

    ``features``: "pretrained" (TF-FID weights, else :class:`WeightsUnavailable`), "random"
    (seeded re-initialised network, see :func:`_reinit_random`) or "auto" (pretrained if
    available, else random with a warning). The network takes (N,3,H,W) in [0,1], resizes to
    299 itself, is frozen in eval mode and has ``features_kind`` set to what was used.
    """
    from pytorch_fid import inception as pi

    if dims not in pi.InceptionV3.BLOCK_INDEX_BY_DIM:
        raise ValueError(f"dims must be one of {sorted(pi.InceptionV3.BLOCK_INDEX_BY_DIM)}, got {dims}")
    kind, state = _resolve("inception", features)
    with torch.random.fork_rng(devices=[]):  # default init draws from the global RNG: leave it alone
        backbone = _fid_backbone()
    if state is not None:
        backbone.load_state_dict(state)
    with _BUILD_LOCK:  # InceptionV3 calls the module-level builder; hand it ours (no download)
        original = pi.fid_inception_v3
        pi.fid_inception_v3 = lambda: backbone
        try:
            net = pi.InceptionV3([pi.InceptionV3.BLOCK_INDEX_BY_DIM[dims]])
        finally:
            pi.fid_inception_v3 = original
    if state is None:
        _reinit_random(net, seed)  # only the blocks kept for ``dims``
    return _freeze(net, kind, device)


def load_vgg19(features: str = "pretrained", seed: int = 0, device: torch.device | str | None = None) -> nn.Module:
    """torchvision VGG19 ``.features`` (IMAGENET1K_V1 weights), eval mode, ``requires_grad`` False.

    Input is ImageNet-normalised (N,3,H,W); normalisation is the caller's job (see ``losses``).
    ``features``: as for :func:`load_inception`; "random" is torchvision's VGG init (Kaiming normal,
    fan_out), seeded with a private generator so the global RNG is untouched.
    """
    from torchvision.models.vgg import cfgs, make_layers

    kind, state = _resolve("vgg19", features)
    with torch.random.fork_rng(devices=[]):  # default init draws from the global RNG: leave it alone
        net = make_layers(cfgs["E"])  # VGG19 .features only: skips the 102M-parameter classifier
    if state is not None:
        net.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    else:
        gen = torch.Generator().manual_seed(seed)  # torchvision's VGG init (Kaiming fan_out), seeded
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu", generator=gen)
                nn.init.zeros_(m.bias)
    return _freeze(net, kind, device)


# -- LPIPS (Zhang et al. 2018) and I3D for FVD (Unterthiner et al. 2019); used by chapter 05 ----------------

LPIPS_NETS = {"alex": ("alexnet", "lpips_alex"), "vgg": ("vgg16", "lpips_vgg")}


def load_lpips_backbone(
    net: str = "alex", features: str = "pretrained", seed: int = 0, device: torch.device | str | None = None
) -> nn.Module:
    """torchvision AlexNet or VGG16 ``.features`` (IMAGENET1K_V1), frozen, for LPIPS.

    ``net``: "alex" | "vgg". ``features`` as for :func:`load_inception`: "random" is a seeded
    Kaiming-normal (fan_in) re-initialisation, so the features have spread (labelled ``random``).
    """
    from torchvision.models.alexnet import AlexNet
    from torchvision.models.vgg import cfgs, make_layers

    if net not in LPIPS_NETS:
        raise ValueError(f"net must be one of {sorted(LPIPS_NETS)}, got {net!r}")
    kind, state = _resolve(LPIPS_NETS[net][0], features)
    with torch.random.fork_rng(devices=[]):  # default init draws from the global RNG: leave it alone
        body = AlexNet().features if net == "alex" else make_layers(cfgs["D"])
    if state is not None:
        body.load_state_dict({k.removeprefix("features."): v for k, v in state.items() if k.startswith("features.")})
    else:
        _reinit_random(body, seed)
    return _freeze(body, kind, device)


def load_lpips_linear(net: str = "alex", download: bool | None = None) -> list[torch.Tensor]:
    """The five LPIPS v0.1 linear-layer weights, each (1, C, 1, 1) and non-negative.

    Raises :class:`WeightsUnavailable` when the file is absent (there is no random version of a
    *learned* calibration: callers use equal weights and label the result instead).
    """
    if net not in LPIPS_NETS:
        raise ValueError(f"net must be one of {sorted(LPIPS_NETS)}, got {net!r}")
    state = _load_state(LPIPS_NETS[net][1], download)
    return [state[f"lin{i}.model.1.weight"].float() for i in range(5)]


class _RandomVideoFeatures(nn.Module):
    """Seeded random 3-D conv features: the documented FVD fallback when the I3D file is absent.

    Four Conv3d + ReLU stages (stride 2 in space, 1 then 2 in time), global average pooling and a
    random linear map to ``dims`` features. Called like StyleGAN-V's I3D TorchScript:
    ``(N, 3, T, H, W)`` in [-1, 1] -> (N, dims). Its FVD is NOT comparable to published FVD.
    """

    def __init__(self, dims: int = 400, seed: int = 0) -> None:
        super().__init__()
        chans = (3, 16, 32, 64, 128)
        self.body = nn.Sequential(
            *[
                m
                for i in range(4)
                for m in (nn.Conv3d(chans[i], chans[i + 1], 3, stride=(1 if i < 2 else 2, 2, 2), padding=1), nn.ReLU())
            ]
        )
        self.proj = nn.Linear(chans[-1], dims)
        gen = torch.Generator().manual_seed(seed)  # Kaiming-normal fan_in, as _reinit_random (which skips Conv3d)
        for m in self.modules():
            if isinstance(m, (nn.Conv3d, nn.Linear)):
                nn.init.normal_(m.weight, 0.0, (2.0 / m.weight[0].numel()) ** 0.5, generator=gen)
                nn.init.zeros_(m.bias)

    def forward(self, x: torch.Tensor, **_: object) -> torch.Tensor:
        return self.proj(self.body(x).mean((2, 3, 4)))


def load_i3d(
    features: str = "pretrained", seed: int = 0, dims: int = 400, device: torch.device | str | None = None
) -> nn.Module:
    """StyleGAN-V's TorchScript I3D (Kinetics-400) for FVD, frozen; or the labelled random fallback.

    The TorchScript takes ``(N, 3, T, H, W)`` in [-1, 1] with ``rescale=False, resize=True,
    return_features=True`` and returns (N, 400) features (StyleGAN-V / common_metrics_on_video_quality,
    which the official Fundus2Video code calls). A TorchScript archive holds code as well as
    weights, so it is loaded with ``torch.jit.load``: only use the file from the registry's URL.
    ``features="random"`` gives :class:`_RandomVideoFeatures` (``dims`` wide), labelled ``random``.
    """

    def build(kind: str) -> nn.Module:
        if kind == "pretrained":
            return torch.jit.load(str(fetch("i3d")), map_location="cpu")
        with torch.random.fork_rng(devices=[]):
            return _RandomVideoFeatures(dims, seed)

    return with_fallback(lambda kind: _freeze(build(kind), kind, device), features, "I3D video (FVD)")
