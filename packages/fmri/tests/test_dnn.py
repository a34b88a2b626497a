"""Stimuli end to end on tiny trained networks; the DNN side (hooks, RDMs, accuracy)."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from repro.core.params import parse
from repro.distill.models import build_model
from repro.fmri.attacks import PixelModel
from repro.fmri.dnn import accuracy_by_condition, activations, default_layers, dnn_analysis
from repro.fmri.params import DnnParams, StimulusParams
from repro.fmri.stimuli import COLUMNS, build_stimuli, load_nets, read_stimuli


def test_default_layers_of_zoo_models():
    assert default_layers(build_model("resnet20", 10, 1)) == [
        "conv1", "stages.0", "stages.1", "stages.2", "fc",
    ]  # fmt: skip
    assert default_layers(build_model("wrn_16_2", 10, 1)) == [
        "conv1", "stages.0", "stages.1", "stages.2", "fc",
    ]  # fmt: skip
    assert default_layers(build_model("resnet18_imagenet", 10, 3)) == [
        "net.conv1", "net.layer1", "net.layer2", "net.layer3", "net.layer4", "net.fc",
    ]  # fmt: skip


def test_hooked_activations_equal_the_models_own_stage_outputs(digits):
    torch.manual_seed(0)
    model = PixelModel(build_model("resnet8", 10, 1), [0.5], [0.5]).eval()
    x = torch.from_numpy(digits[0][:20]).permute(0, 3, 1, 2).contiguous()
    acts = activations(model, x, ["stages.2", "fc"], batch_size=7)
    with torch.no_grad():
        logits, feats = model.model((x.float() / 255 - 0.5) / 0.5)
    np.testing.assert_allclose(acts["stages.2"], feats["feats"][3].flatten(1).numpy(), atol=1e-5)
    np.testing.assert_allclose(acts["fc"], logits.numpy(), atol=1e-5)


def test_accuracy_by_condition_by_hand(make_stimuli):
    stim = make_stimuli(1)  # 10 sources x 3 conditions, classes 0..9
    preds = stim.labels.copy()
    preds[10:14] = (preds[10:14] + 1) % 10  # 4 white-box errors
    preds[20] = (preds[20] + 1) % 10  # 1 black-box error
    res = accuracy_by_condition(stim, preds)
    assert res["accuracy"] == {"clean": 1.0, "white": 0.6, "black": 0.9}
    assert res["mcnemar"]["white"]["lost"] == 4
    assert res["mcnemar"]["white"]["p"] == pytest.approx(0.5**4)


@pytest.mark.slow
def test_stimuli_and_dnn_side_end_to_end(digits_dir, trained_nets, tmp_path):
    params = parse(
        StimulusParams,
        {"nets": {"target": "resnet8", "substitute": "wrn_16_1"}, "per_class": 2,
         "attack": {"method": "pgd", "epsilon": 32, "step_size": 4, "steps": 10}},
        "stimuli",
    )  # fmt: skip
    out = tmp_path / "stimuli"
    stim = build_stimuli(
        digits_dir, trained_nets["target"], trained_nets["substitute"], params, out
    )
    assert len(stim.table) == 60
    with open(out / "stimuli.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == COLUMNS and len(rows) == 60
    back = read_stimuli(out)
    assert np.array_equal(back.images, stim.images)  # PNG is lossless
    clean, white, black = (
        back.images[back.conditions == c].astype(int) for c in ("clean", "white", "black")
    )
    assert np.abs(white - clean).max() <= 32 and np.abs(black - clean).max() <= 32
    assert np.abs(white - clean).max() == 32
    # every source is classified correctly by both networks when clean (require_correct)
    clean_rows = [r for r in back.table if r["condition"] == "clean"]
    assert all(r["target_pred"] == r["class"] == r["substitute_pred"] for r in clean_rows)
    white_rows = [r for r in back.table if r["condition"] == "white"]
    black_rows = [r for r in back.table if r["condition"] == "black"]
    assert all(r["success"] == int(r["target_pred"] != r["class"]) for r in white_rows + black_rows)
    white_rate = np.mean([r["success"] for r in white_rows])
    black_rate = np.mean([r["success"] for r in black_rows])
    assert white_rate >= 0.6 and white_rate > black_rate
    # black-box stimuli fool the substitute they were made on
    assert np.mean([r["substitute_pred"] != r["class"] for r in black_rows]) >= 0.6

    dparams = parse(
        DnnParams,
        {"nets": {"target": "resnet8", "substitute": "wrn_16_1"}, "stats": {"n_permutations": 999}},
        "dnn",
    )
    target, substitute = load_nets(
        dparams.nets, trained_nets["target"], trained_nets["substitute"], 10, 1
    )
    results, rdms = dnn_analysis(back, {"target": target, "substitute": substitute}, dparams)
    tgt = results["networks"]["target"]
    assert len(rdms) == 10 and rdms["target/fc"].shape == (60 * 59 // 2,)
    assert tgt["accuracy"]["clean"] == 1.0
    assert tgt["accuracy"]["white"] == pytest.approx(1 - white_rate)
    assert tgt["mcnemar"]["white"]["p"] < 0.01
    # the white-box attack moves the target's output layer further than the transferred one
    fc = tgt["wb_difference"][-1]
    assert fc["layer"] == "fc" and fc["T"] > 0 and fc["significant"]


def _imagenet_like(root, n_classes=3, per_class=2):
    """A folder in the ILSVRC layout: left half red, right half blue, 40 x 60 px JPEG-free PNGs."""
    from PIL import Image

    img = np.zeros((40, 60, 3), np.uint8)
    img[:, :30, 0] = 255
    img[:, 30:, 2] = 255
    for split in ("train", "val"):
        for c in range(n_classes):
            folder = root / split / f"n{c:08d}"
            folder.mkdir(parents=True)
            for k in range(per_class):
                Image.fromarray(img).save(folder / f"{k}.png")


def test_folder_pool_gives_centre_crops(tmp_path):
    from repro.data.imagenet import index_imagenet
    from repro.fmri.stimuli import FolderPool, open_pool

    _imagenet_like(tmp_path / "raw")
    index_imagenet(tmp_path / "raw", tmp_path / "index", num_classes=3)
    pool, classes = open_pool(tmp_path / "index", "val", 28)
    assert isinstance(pool, FolderPool) and classes == [f"n{c:08d}" for c in range(3)]
    assert pool.labels.tolist() == [0, 0, 1, 1, 2, 2]
    x = pool.load(np.array([0, 5]))
    # shorter side 40 -> 32 (28 / 0.875), 60 -> 48; the central 28 x 28 keeps the red/blue edge
    assert x.shape == (2, 28, 28, 3) and x.dtype == np.uint8
    assert (x[:, :, :12, 0] > 200).all() and (x[:, :, 16:, 2] > 200).all()
    assert (x[:, :, :12, 2] < 50).all() and (x[:, :, 16:, 0] < 50).all()


def test_folder_pool_reads_greyscale_cmyk_and_png_named_jpeg_files_as_pils_rgb(tmp_path):
    """ILSVRC-2012's quirks (repro.data.fake) in the val classes the study draws from: each
    comes out as 3 planes equal to PIL's convert('RGB') (a CMYK JPEG as 4 planes or without
    its K plane, a greyscale one as 1 plane, fail here)."""
    from PIL import Image

    from repro.data.fake import make_imagenet
    from repro.data.imagenet import index_imagenet
    from repro.fmri.stimuli import open_pool

    quirks = make_imagenet(tmp_path / "raw", classes=4, per_class=4, head=0)
    index_imagenet(tmp_path / "raw", tmp_path / "index", num_classes=4)
    pool, _ = open_pool(tmp_path / "index", "val", 16)  # shorter side to 18, centre 16 x 16
    for kind in ("L", "CMYK", "PNG"):
        (path,) = [p for p in quirks[kind] if p.parent.parent.name == "val"]
        i = pool.paths.index(path.relative_to(tmp_path / "raw").as_posix())
        (x,) = pool.load(np.array([i]))
        img = Image.open(path).convert("RGB")
        w, h = img.size
        img = img.resize((18, int(18 * h / w)) if w <= h else (int(18 * w / h), 18),
                         Image.Resampling.BILINEAR)  # fmt: skip
        left, top = (img.size[0] - 16) // 2, (img.size[1] - 16) // 2
        ref = np.asarray(img.crop((left, top, left + 16, top + 16))).astype(np.float64)
        diff = np.abs(x.astype(np.float64) - ref)
        assert x.shape == (16, 16, 3) and diff.mean() < 0.5 and diff.max() <= 3, (kind, diff.max())


@pytest.mark.slow
def test_stimuli_from_an_imagenet_index_with_torchvision_weights(tmp_path):
    from repro.data.imagenet import index_imagenet

    _imagenet_like(tmp_path / "raw")
    index_imagenet(tmp_path / "raw", tmp_path / "index", num_classes=3)
    paths = {}
    for role, name in (("target", "resnet18_imagenet"), ("substitute", "mobilenetv1_imagenet")):
        torch.manual_seed(0)
        model = build_model(name, 3, 3)
        paths[role] = tmp_path / f"{role}.pth"
        torch.save(getattr(model, "net", model).state_dict(), paths[role])
    params = parse(
        StimulusParams,
        {"nets": {"target": "resnet18_imagenet", "substitute": "mobilenetv1_imagenet",
                  "weights_format": "torchvision", "mean": [0.485, 0.456, 0.406],
                  "std": [0.229, 0.224, 0.225]},
         "split": "val", "image_size": 32, "per_class": 1, "require_correct": False,
         "attack": {"method": "fgsm", "epsilon": 8}},
        "stimuli",
    )  # fmt: skip
    stim = build_stimuli(
        tmp_path / "index", paths["target"], paths["substitute"], params, tmp_path / "s"
    )
    assert stim.images.shape == (9, 32, 32, 3)
    back = read_stimuli(tmp_path / "s")
    assert np.array_equal(back.images, stim.images)
    diff = np.abs(back.images[3:6].astype(int) - back.images[:3].astype(int))
    assert diff.max() == 8
