"""Fake user-supplied weights for a smoke run of the paper config (``repro-data fake``).

The paper config asks the user for torchvision's ImageNet weight files. This plug-in writes
files in exactly that format, with random values: what ``torchvision.models.<arch>().state_dict()``
holds (every parameter and buffer, ``num_batches_tracked`` included), saved with
``torch.save``, named as torchvision's official downloads. One writer for every such file:

- ResNet-34 / ResNet-50: the ImageNet teachers (``kd.pretrained_teachers.imagenet``, which the
  fMRI paper's target and substitute networks also read);
- ResNet-18 / ResNet-34: the initial weights of the fine-grained datasets (``kd.init_weights``);
- ResNet-152: MHSAN's backbone (``mhsan.train.model.backbone_weights``);
- AlexNet: the LPIPS trunk of the burst SR scorecard (``burst_sr.lpips_weights``).

Values come from torchvision's default initialisation under a fixed seed (about 5 s and
720 MB for the five files on 2 CPU cores).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from repro.core.checkpoint import save_checkpoint

#: torchvision architecture -> the official file name (``<arch>-<hash prefix>.pth``).
TORCHVISION_FILES = {
    "resnet18": "resnet18-f37072fd.pth",
    "resnet34": "resnet34-b627a593.pth",
    "resnet50": "resnet50-0676ba61.pth",
    "resnet152": "resnet152-394f9c45.pth",
    "alexnet": "alexnet-owt-7be5be79.pth",
}
#: The fine-grained datasets whose runs start from ImageNet weights (``kd.init_weights``).
INIT_DATASETS = ("cub200", "mit67", "stanford40", "dogs")


def write_torchvision(arch: str, folder: str | Path, seed: int = 0) -> Path:
    """Write a random ``torchvision.models.<arch>()`` state_dict as ``folder/<official name>``
    (the global RNG is left as it was)."""
    import torchvision

    path = Path(folder) / TORCHVISION_FILES[arch]
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        state = getattr(torchvision.models, arch)(weights=None).state_dict()
    save_checkpoint(path, state)
    return path


def write_fakes(out: Path) -> dict[str, Any]:
    """Write every torchvision weight file under ``out``; the config overlay naming them."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {
        arch: str(write_torchvision(arch, out, seed).resolve())
        for seed, arch in enumerate(TORCHVISION_FILES)
    }
    imagenet = {"resnet18_imagenet": files["resnet18"], "resnet34_imagenet": files["resnet34"]}
    return {
        "kd": {
            "pretrained_teachers": {
                "imagenet": {
                    "resnet34_imagenet": files["resnet34"],
                    "resnet50_imagenet": files["resnet50"],
                }
            },
            "init_weights": {d: dict(imagenet) for d in INIT_DATASETS},
        },
        "mhsan": {"train": {"model": {"backbone_weights": files["resnet152"]}}},
        "burst_sr": {"lpips_weights": files["alexnet"]},
    }
