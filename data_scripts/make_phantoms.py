#!/usr/bin/env python
"""Write a phantom dataset in the MedSynth layout (see data_scripts/README.md).

Examples::

    python data_scripts/make_phantoms.py retina data/retina --train 17 --test 14 --size 576 720
    python data_scripts/make_phantoms.py retina_seq data/seq --train 8 --test 2 --size 256 --frames 12
    python data_scripts/make_phantoms.py brain data/brain --train 200 --test 40 --size 240
"""

from __future__ import annotations

import argparse
import sys

from _common import add_output_args, cli  # (also puts lib/ on sys.path for a checkout without install)

from medsynth.data.layout import PHANTOM_KINDS, write_phantoms


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="phantom dataset -> MedSynth layout")
    ap.add_argument("kind", choices=PHANTOM_KINDS)
    ap.add_argument("out", help="output folder (must not exist or be empty)")
    ap.add_argument("--train", type=int, default=17, help="items in the train split (Fundus2Angio: 17 pairs)")
    ap.add_argument("--test", type=int, default=14, help="items in the test split (Fundus2Angio: 14 images)")
    ap.add_argument("--size", type=int, nargs="+", default=None, help="H [W] (default 576 720 retina, 240 brain)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--severity", type=float, default=None, help="retina: fixed severity (default: normal/abnormal mix)"
    )
    ap.add_argument("--frames", type=int, default=12, help="retina_seq: frames per sequence")
    ap.add_argument("--misalign", type=float, default=0.0, help="retina: FA misregistration (0 = registered)")
    add_output_args(ap)
    a = ap.parse_args(argv)
    size = a.size or ([240, 240] if a.kind == "brain" else [576, 720])
    size = size * 2 if len(size) == 1 else size
    params: dict = {}
    if a.kind != "brain":
        params.update(severity=a.severity, misalign=a.misalign)
        if a.kind == "retina_seq":
            params["n_frames"] = a.frames
    out = write_phantoms(
        a.out, a.kind, {"train": a.train, "test": a.test}, size, a.seed, progress=True, overwrite=a.overwrite, **params
    )
    print(out)


if __name__ == "__main__":
    sys.exit(cli(main))
