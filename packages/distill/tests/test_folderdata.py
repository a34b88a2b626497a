"""FolderData (ImageNet-format folders): crops against PIL, reproducibility, sharding, a run."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image

from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.core.params import parse
from repro.data.imagenet import index_imagenet
from repro.distill.folderdata import FolderData, random_resized_box
from repro.distill.params import RunParams


def run_params(data: dict) -> RunParams:
    """A run's params as ``repro-distill train`` reads its ``--params``."""
    return parse(RunParams, data)


def cell_params(cells: list[dict]) -> list[RunParams]:
    """A group's cells as ``repro-distill train-group`` reads them."""
    return [parse(RunParams, c, f"--params cell {k}") for k, c in enumerate(cells)]


# torchvision 0.29 deprecates its image decoders in favour of torchcodec (not a dependency here)
pytestmark = pytest.mark.filterwarnings("ignore:The image decoding:DeprecationWarning")

WNIDS = ["n00000001", "n00000002", "n00000003"]
#: (width, height) of the images of each class; one of them is greyscale.
SIZES = [(300, 260), (260, 330), (256, 256), (410, 270)]


def _image(w: int, h: int, seed: int, grey: bool) -> Image.Image:
    """A smooth random picture (JPEG-friendly), so crops of it differ from place to place."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (h // 16 + 1, w // 16 + 1, 1 if grey else 3), dtype=np.uint8)
    img = Image.fromarray(small.squeeze(-1) if grey else small)
    return img.resize((w, h), Image.Resampling.BICUBIC)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    """A 3-class ImageNet-format folder (4 train, 2 val images per class), indexed."""
    root = tmp_path_factory.mktemp("ilsvrc")
    for c, wnid in enumerate(WNIDS):
        for split, n in (("train", 4), ("val", 2)):
            (root / split / wnid).mkdir(parents=True)
            for i in range(n):
                w, h = SIZES[(i + c) % len(SIZES)]
                grey = (c, i, split) == (1, 0, "val")
                _image(w, h, 100 * c + 10 * i + len(split), grey).save(
                    root / split / wnid / f"{wnid}_{i}.JPEG", quality=95
                )
    index = root.parent / "index"
    index_imagenet(root, index, num_classes=3)
    return index


def _rows(index: Path, split: str) -> list[dict[str, str]]:
    with (index / f"{split}.csv").open() as f:
        return list(csv.DictReader(f))


def _pil_centre_crop(path: Path, resize: int = 256, crop: int = 224) -> np.ndarray:
    """Shorter side to ``resize`` (bilinear), centre ``crop`` x ``crop``, with PIL only."""
    img = Image.open(path).convert("RGB")
    w, h = img.size
    size = (resize, int(resize * h / w)) if w <= h else (int(resize * w / h), resize)
    img = img.resize(size, Image.Resampling.BILINEAR)
    left, top = round((size[0] - crop) / 2), round((size[1] - crop) / 2)
    return np.asarray(img.crop((left, top, left + crop, top + crop))).transpose(2, 0, 1)


def test_eval_batches_are_centre_crops_like_pil(tiny):
    val = FolderData.load(tiny, "val")
    assert len(val) == 6 and val.num_classes == 3 and val.in_channels == 3
    root = Path(json.loads((tiny / "meta.json").read_text())["root"])
    rows = _rows(tiny, "val")
    batches = list(val.batches(4, shuffle=False))
    assert [tuple(x.shape) for x, _ in batches] == [(4, 3, 224, 224), (2, 3, 224, 224)]
    images = torch.cat([x for x, _ in batches])
    labels = torch.cat([y for _, y in batches])
    assert images.dtype == torch.uint8 and labels.dtype == torch.int64
    assert labels.tolist() == [int(r["label"]) for r in rows]
    for img, row in zip(images, rows, strict=True):
        ref = _pil_centre_crop(root / row["path"]).astype(np.float64)
        diff = np.abs(img.numpy().astype(np.float64) - ref)
        # PIL's and torchvision's decoders and bilinear kernels: rounding differences only
        assert diff.mean() < 0.5 and diff.max() <= 3, (row["path"], diff.mean(), diff.max())
    grey = rows.index(next(r for r in rows if r["path"].endswith("n00000002_0.JPEG")))
    assert torch.equal(images[grey][0], images[grey][1])  # greyscale decoded to 3 equal planes


def test_greyscale_cmyk_and_png_named_jpeg_files_decode_to_pils_rgb(tmp_path):
    """ILSVRC-2012's quirks (repro.data.fake): each comes out as 3 planes equal to what
    PIL's convert('RGB') gives (a CMYK JPEG read as 4 planes, or without the Adobe inversion,
    a greyscale one read as 1 plane, a PNG decoded by extension, all fail here)."""
    from repro.data.fake import make_imagenet

    quirks = make_imagenet(tmp_path / "ilsvrc", classes=4, per_class=4, head=0)
    index_imagenet(tmp_path / "ilsvrc", tmp_path / "index", num_classes=4)
    val = FolderData.load(tmp_path / "index", "val", crop_size=16)  # shorter side to 18
    images = torch.cat([x for x, _ in val.batches(8, shuffle=False)])
    assert images.shape == (16, 3, 16, 16)
    rows = _rows(tmp_path / "index", "val")
    paths = [tmp_path / "ilsvrc" / r["path"] for r in rows]
    for kind in ("L", "CMYK", "PNG"):
        (path,) = [p for p in quirks[kind] if p.parent.parent.name == "val"]
        img = images[paths.index(path)].numpy().astype(np.float64)
        diff = np.abs(img - _pil_centre_crop(path, resize=18, crop=16))
        assert diff.mean() < 0.5 and diff.max() <= 3, (kind, diff.mean(), diff.max())
        if kind == "L":
            assert np.array_equal(img[0], img[1]) and np.array_equal(img[1], img[2])


def test_train_crops_are_reproducible_and_independent_of_workers(tiny):
    train = FolderData.load(tiny, "train")

    def epoch(seed: int, workers: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        train.workers = workers
        gen = torch.Generator().manual_seed(seed)
        xs, ys = zip(*train.batches(5, shuffle=True, generator=gen), strict=True)
        return torch.cat(xs), torch.cat(ys)

    x0, y0 = epoch(0)
    assert x0.shape == (12, 3, 224, 224) and x0.dtype == torch.uint8
    assert sorted(y0.tolist()) == [0] * 4 + [1] * 4 + [2] * 4
    x1, y1 = epoch(0, workers=2)
    assert torch.equal(x0, x1) and torch.equal(y0, y1)
    x2, _ = epoch(1)
    assert not torch.equal(x0, x2)
    dropped = [len(y) for _, y in train.batches(5, shuffle=False, drop_last=True)]
    assert dropped == [5, 5]


def test_rank_shards_are_disjoint_and_cover_the_split(tiny):
    val = FolderData.load(tiny, "val", crop_size=32)  # centre crops identify the images
    everything = {x.numpy().tobytes() for b, _ in val.batches(6, shuffle=False) for x in b}
    assert len(everything) == 6
    shards = []
    for rank in range(4):
        gen = torch.Generator().manual_seed(3)  # every rank draws the same permutation
        batches = val.batches(2, shuffle=True, generator=gen, rank=rank, world_size=4)
        shards.append([x.numpy().tobytes() for b, _ in batches for x in b])
    assert [len(s) for s in shards] == [2, 2, 1, 1]
    assert set().union(*map(set, shards)) == everything and sum(map(len, shards)) == 6


def test_random_resized_box_stays_in_bounds_and_in_range():
    gen = torch.Generator().manual_seed(0)
    fractions = []
    for _ in range(300):
        top, left, h, w = random_resized_box(200, 300, gen)
        assert 0 <= top <= 200 - h and 0 <= left <= 300 - w
        fractions.append(h * w / 60_000)
        assert 3 / 4 - 0.02 < w / h < 4 / 3 + 0.02
    assert 0.07 < min(fractions) < 0.2 and max(fractions) > 0.8  # spans scale (0.08, 1)
    # a 1000 x 10 strip fits no box of the ratio range: centred, ratio clipped to 4/3
    assert random_resized_box(10, 1000, gen) == (0, (1000 - 13) // 2, 10, 13)


def test_teacher_weights_load_a_torchvision_state_dict(tmp_path):
    from repro.distill.models import load_teacher_weights

    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=3).eval()
    torch.save(net.state_dict(), tmp_path / "resnet18.pth")
    model = load_teacher_weights("resnet18_imagenet", tmp_path / "resnet18.pth", 3, 3).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x)[0], net(x), rtol=0, atol=0)

    key = "energy_kd.pretrained_teachers.imagenet.resnet18_imagenet"
    for missing in (None, tmp_path / "nope.pth"):
        with pytest.raises(ReproError, match=key.replace(".", r"\.")) as info:
            load_teacher_weights("resnet18_imagenet", missing, 3, 3, key)
        assert "\n" not in str(info.value)
    with pytest.raises(ReproError, match="not a state_dict of model 'resnet34_imagenet'") as info:
        load_teacher_weights("resnet34_imagenet", tmp_path / "resnet18.pth", 3, 3)
    assert "\n" not in str(info.value)


def test_kd_run_on_a_folder_index_with_a_pretrained_teacher(tiny, tmp_path):
    from repro.distill.run import train_run

    torch.manual_seed(0)
    torch.save(
        torchvision.models.resnet18(weights=None, num_classes=3).state_dict(), tmp_path / "t.pth"
    )
    params = {
        "student": "resnet8",
        "teacher": "resnet18_imagenet",
        "teacher_weights": str(tmp_path / "t.pth"),
        "method": "dkd",
        "args": {"temperature": 1, "warmup": 1, "beta": 0.5},
        "train": {
            "epochs": 1,
            "batch_size": 4,
            "lr": 0.2,
            "crop_padding": 0,
            "image_size": 32,
            "mean": [0.485, 0.456, 0.406],
            "std": [0.229, 0.224, 0.225],
            "eval_batch_size": 4,
            "threads": 1,
        },
    }
    result = train_run(run_params(params), tiny, tmp_path / "run")
    assert result["dataset"] == "imagenet" and result["epochs"] == 1
    assert math.isfinite(result["final_top1"]) and 0 <= result["final_top1"] <= 100
    assert json.loads((tmp_path / "run" / "result.json").read_text())["teacher"] == (
        "resnet18_imagenet"
    )
    del params["teacher_weights"]
    with pytest.raises(ReproError, match="needs --teacher"):  # no file and no model.pt
        train_run(run_params(params), tiny, tmp_path / "run2")


def _fitted_resnet18(images: torch.Tensor, labels: torch.Tensor, mean, std) -> torch.nn.Module:
    """A resnet18 that classifies ``images`` perfectly when normalised with (mean, std): BN
    statistics from those images, final layer fitted by least squares on its features."""
    torch.manual_seed(0)
    net = torchvision.models.resnet18(weights=None, num_classes=3)
    x = (images.float() / 255 - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(
        1, 3, 1, 1
    )
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.momentum = None  # running stats = this batch's
    with torch.no_grad():
        net.train()(x)
        feats = torch.nn.Sequential(*list(net.children())[:-1]).eval()(x).flatten(1)
        target = 10.0 * torch.nn.functional.one_hot(labels, 3).float()
        w = torch.linalg.lstsq(feats, target).solution  # (512, 3)
        net.fc.weight.copy_(w.T)
        net.fc.bias.zero_()
    return net.eval()


def test_pretrained_teacher_is_scored_like_a_hand_computation(tiny, tmp_path):
    from repro.distill import cli

    mean, std = [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]
    images, labels = next(FolderData.load(tiny, "val").batches(6, shuffle=False))
    net = _fitted_resnet18(images, labels, mean, std)

    def by_hand(m, s) -> float:  # the val centre crops (checked against PIL above)
        x = (images.float() / 255 - torch.tensor(m).view(1, 3, 1, 1)) / torch.tensor(s).view(
            1, 3, 1, 1
        )
        with torch.no_grad():
            return 100.0 * float((net(x).argmax(1) == labels).float().mean())

    assert by_hand(mean, std) == 100.0 and by_hand([0.5] * 3, [0.5] * 3) < 100.0
    torch.save(net.state_dict(), tmp_path / "t.pth")
    params = {
        "teacher": "resnet18_imagenet",
        "teacher_weights": str(tmp_path / "t.pth"),
        "teacher_weights_key": "energy_kd.pretrained_teachers.imagenet.resnet18_imagenet",
        "train": {"mean": mean, "std": std, "eval_batch_size": 4, "threads": 1},
    }
    out = tmp_path / "pretrained" / "result.json"
    assert cli.main(["evaluate", "--data", str(tiny), "--out", str(out),
                     "--params", json.dumps(params)]) == 0  # fmt: skip
    result = json.loads(out.read_text())
    assert result["final_top1"] == 100.0 and result["best_top1"] == 100.0
    assert result["final_top5"] == 100.0  # 3 classes
    assert result["method"] == "ce" and result["pretrained"] is True
    assert result["student"] == "resnet18_imagenet" and result["teacher"] is None
    assert result["epochs"] == 0 and result["dataset"] == "imagenet"
    params["teacher_weights"] = str(tmp_path / "missing.pth")
    assert cli.main(["evaluate", "--data", str(tiny), "--out", str(tmp_path / "x.json"),
                     "--params", json.dumps(params)]) == 2  # fmt: skip
    assert not (tmp_path / "x.json").exists()


def test_train_flips_are_per_sample_so_ranks_see_what_one_process_sees(tiny):
    """Each sample's crop and flip come from its own seed: the rows of a global batch that a
    rank decodes are exactly those rows of the one-process batch (torchrun runs)."""
    train = FolderData.load(tiny, "train", crop_size=24, flip=True)
    plain = FolderData.load(tiny, "train", crop_size=24, flip=False)

    def batches(data, size, rank=0, world=1):
        gen = torch.Generator().manual_seed(5)
        return list(data.batches(size, shuffle=True, generator=gen, rank=rank, world_size=world))

    whole = batches(train, 4)
    for rank in range(2):
        for (x, y), (xr, yr) in zip(whole, batches(train, 2, rank, 2), strict=True):
            assert torch.equal(x[rank::2], xr) and torch.equal(y[rank::2], yr)
    unflipped = torch.cat([x for x, _ in batches(plain, 4)])
    flipped = torch.cat([x for x, _ in whole])
    same = [torch.equal(a, b) for a, b in zip(flipped, unflipped, strict=True)]
    mirrored = [torch.equal(a, b.flip(-1)) for a, b in zip(flipped, unflipped, strict=True)]
    assert all(s or m for s, m in zip(same, mirrored, strict=True))
    assert any(mirrored) and any(same)  # 12 fair coins: both outcomes (seed 5)


def test_init_weights_load_everything_but_a_new_classifier(tmp_path):
    """ImageNet-pretrained initialisation for a dataset with other classes: every torchvision
    tensor is loaded except the 1000-class fc, which keeps its fresh initialisation."""
    from repro.distill.models import build_model, load_init_weights

    torch.manual_seed(0)
    imagenet = torchvision.models.resnet18(weights=None, num_classes=1000)
    torch.save(imagenet.state_dict(), tmp_path / "resnet18.pth")
    model = build_model("resnet18_imagenet", 5)
    fresh_fc = model.net.fc.weight.detach().clone()
    load_init_weights(model, tmp_path / "resnet18.pth", "kd.init_weights.cub200.resnet18_imagenet")
    for name, value in imagenet.state_dict().items():
        if not name.startswith("fc."):
            assert torch.equal(model.net.state_dict()[name], value), name
    assert torch.equal(model.net.fc.weight, fresh_fc) and model.net.fc.out_features == 5
    same = build_model("resnet18_imagenet", 1000)
    load_init_weights(same, tmp_path / "resnet18.pth", "key")  # same classes: fc loaded too
    assert torch.equal(same.net.fc.weight, imagenet.fc.weight)
    with pytest.raises(ReproError, match=r"kd\.init_weights\.cub200\.resnet34_imagenet") as info:
        load_init_weights(
            build_model("resnet34_imagenet", 5), tmp_path / "resnet18.pth",
            "kd.init_weights.cub200.resnet34_imagenet",
        )  # fmt: skip
    assert "does not fit" in str(info.value) and "\n" not in str(info.value)
    with pytest.raises(ReproError, match="not set"):
        load_init_weights(model, None, "kd.init_weights.cub200.resnet18_imagenet")


def test_a_fine_grained_index_is_a_folder_index():
    from repro.distill.folderdata import is_folder_index

    assert is_folder_index({"name": "imagenet"}) and is_folder_index({"format": "folder-index"})
    assert not is_folder_index({"name": "cifar100", "splits": {}})


def test_a_lockstep_group_on_a_folder_index_equals_its_cells_alone(tiny, tmp_path):
    """The paper run groups ImageNet and fine-grained rows too (folder datasets: JPEGs decoded
    and cropped per sample, flips per sample): each grouped cell ends bit for bit as alone."""
    from repro.distill.run import train_group, train_run

    torch.manual_seed(0)
    torch.save(
        torchvision.models.resnet18(weights=None, num_classes=3).state_dict(), tmp_path / "t.pth"
    )
    train = {"epochs": 2, "batch_size": 4, "lr": 0.1, "lr_milestones": [1], "crop_padding": 0,
             "image_size": 32, "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225],
             "eval_batch_size": 4, "threads": 1}  # fmt: skip
    energy = {"policy": "energy", "r_low": 0.25, "r_high": 0.25}
    cells = [
        {
            "student": "resnet8",
            "teacher": "resnet18_imagenet",
            "variant": variant,
            "teacher_weights": str(tmp_path / "t.pth"),
            "method": method,
            "args": args,
            "train": train,
        }  # fmt: skip
        for variant, method, args in (
            ("dkd", "dkd", {"warmup": 1}),
            ("energy_kd", "kd", {"temperature": energy}),
        )
    ]
    for cell in cells:
        train_run(run_params(cell), tiny, tmp_path / "alone" / cell["variant"])
    outs = [tmp_path / "group" / c["variant"] for c in cells]
    train_group(cell_params(cells), tiny, outs)
    for cell, out in zip(cells, outs, strict=True):
        alone = tmp_path / "alone" / cell["variant"]
        a = load_checkpoint(alone / "model.pt")["model"]
        b = load_checkpoint(out / "model.pt")["model"]
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), cell["variant"]
        ra, rb = (json.loads((d / "result.json").read_text()) for d in (alone, out))
        assert ra == rb
        assert set(ra["prepared"]) == (
            set() if cell["variant"] == "dkd" else {"tau_low", "tau_high"}
        )
