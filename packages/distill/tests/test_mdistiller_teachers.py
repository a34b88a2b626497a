"""mdistiller's released CIFAR-100 teachers (issue 22.1): its key names renamed to the zoo's,
checkpoints in its exact format loaded weight for weight and scored, one-line errors for files
that do not fit, and ``kd.mdistiller_teachers`` in the plan.

``mdistiller_keys.txt`` lists the state_dict entries of mdistiller's networks (written from
``megvii-research/mdistiller`` a08d46f's ``mdistiller/models/cifar/``): the names a released
checkpoint holds, so the tests write checkpoints exactly as mdistiller (and CRD, whose teachers
it releases) saves them, from our own models' tensors.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from repro.core import ReproError
from repro.data.arrays import write_arrays
from repro.distill import plan
from repro.distill.models import MODELS, build_model, load_teacher_weights, read_weights
from repro.distill.models.mdistiller import zoo_key

ENTRIES = {
    "w": ("weight",),
    "wb": ("weight", "bias"),
    "bn": ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"),
}
KEY = "kd.mdistiller_teachers.cifar100"


def mdistiller_keys() -> dict[str, list[str]]:
    """mdistiller's state_dict keys of each network in ``mdistiller_keys.txt``, in order."""
    keys: dict[str, list[str]] = {}
    current: list[str] = []
    for line in Path(__file__).with_name("mdistiller_keys.txt").read_text().splitlines():
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = keys.setdefault(line.strip("[]"), [])
            continue
        module, code = line.split()
        current += [f"{module}.{leaf}" for leaf in ENTRIES[code]]
    return keys


KEYS = mdistiller_keys()


def random_model(name: str, seed: int = 0) -> torch.nn.Module:
    """A zoo model whose every tensor (BatchNorm statistics too) is random, in eval mode."""
    torch.manual_seed(seed)
    model = build_model(name, 100, 3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.num_batches_tracked.fill_(78_000)
    return model.eval()


def mdistiller_state(name: str, model: torch.nn.Module) -> OrderedDict[str, torch.Tensor]:
    """``model``'s tensors under mdistiller's key names (its state_dict order is ours)."""
    own = model.state_dict()
    assert len(own) == len(KEYS[name])
    return OrderedDict(zip(KEYS[name], (t.clone() for t in own.values()), strict=True))


def write_checkpoint(path: Path, name: str, model: torch.nn.Module, state=None, legacy=False):
    """``ckpt_epoch_240.pth`` as CRD's ``train_teacher.py`` writes it (the files in
    mdistiller's ``cifar_teachers.tar``): epoch, the model's state_dict, the epoch's test
    accuracy (a 0-d tensor) and the SGD optimizer's state (momentum buffers). ``legacy``: the
    pre-1.6 serialisation that 2019 files use."""
    student = copy.deepcopy(model).train()
    opt = torch.optim.SGD(student.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    student(torch.randn(2, 3, 32, 32))[0].sum().backward()
    opt.step()
    checkpoint = {
        "epoch": 240,
        "model": mdistiller_state(name, model) if state is None else state,
        "accuracy": torch.tensor(79.42),
        "optimizer": opt.state_dict(),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, path, _use_new_zipfile_serialization=not legacy)
    return path


def test_mdistiller_key_names_rename_to_the_zoo_in_its_order():
    assert set(plan.MDISTILLER_TEACHERS) <= set(KEYS) <= set(MODELS)
    for name, keys in KEYS.items():
        own = list(build_model(name, 100, 3).state_dict())
        assert [zoo_key(name, k) for k in keys] == own, name
    # the families' names really differ (the renaming is needed, and tested)
    assert KEYS["resnet32x4"][6] == "layer1.0.conv1.weight"  # after conv1 and bn1
    assert "block1.layer.0.convShortcut.weight" in KEYS["wrn_40_2"]
    assert "linear.weight" in KEYS["ResNet50"] and "classifier.0.weight" in KEYS["mobile_half"]
    assert zoo_key("ShuffleV2", "layer2.0.conv4.weight") == "stages.1.0.right.3.weight"
    assert zoo_key("ShuffleV2", "layer2.1.conv2.weight") == "stages.1.1.branch.3.weight"
    with pytest.raises(KeyError, match="resnet18_imagenet"):
        zoo_key("resnet18_imagenet", "conv1.weight")


@pytest.mark.parametrize(
    "name", ["resnet56", "resnet110", "resnet32x4", "ResNet50", "wrn_40_2", "vgg13",
             "mobile_half", "ShuffleV1", "ShuffleV2"],
)  # fmt: skip
def test_a_checkpoint_in_mdistillers_format_loads_weight_for_weight(tmp_path, name):
    model = random_model(name)
    path = write_checkpoint(tmp_path / f"{name}_vanilla" / "ckpt_epoch_240.pth", name, model)
    loaded = load_teacher_weights(name, path, 100, 3, KEY).eval()
    mine = loaded.state_dict()
    assert all(torch.equal(mine[k], v) for k, v in model.state_dict().items())
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(loaded(x)[0], model(x)[0])
    assert read_weights(path, KEY)[1] == {"epoch": 240, "accuracy": pytest.approx(79.42)}


def test_a_legacy_serialised_checkpoint_without_bn_counters_loads(tmp_path):
    """2019 files: pre-zip serialisation, BatchNorm layers perhaps without
    ``num_batches_tracked`` (older PyTorch); both load, every other tensor exact."""
    model = random_model("resnet32x4", seed=1)
    state = mdistiller_state("resnet32x4", model)
    for key in [k for k in state if k.endswith("num_batches_tracked")]:
        del state[key]
    path = write_checkpoint(tmp_path / "old.pth", "resnet32x4", model, state, legacy=True)
    loaded = load_teacher_weights("resnet32x4", path, 100, 3, KEY)
    mine = loaded.state_dict()
    assert all(
        torch.equal(mine[k], v)
        for k, v in model.state_dict().items()
        if not k.endswith("num_batches_tracked")
    )


def _error(path: Path, name: str = "resnet32x4", classes: int = 100) -> str:
    with pytest.raises(ReproError) as info:
        load_teacher_weights(name, path, classes, 3, KEY)
    text = str(info.value)
    assert "\n" not in text and str(path) in text and KEY in text
    return text


def test_a_file_that_does_not_fit_is_one_line_naming_the_file_and_the_first_mismatch(tmp_path):
    model = random_model("resnet32x4")
    state = mdistiller_state("resnet32x4", model)
    wrong = OrderedDict(state)
    wrong["layer3.0.conv1.weight"] = torch.zeros(256, 128, 1, 1)
    text = _error(write_checkpoint(tmp_path / "shape.pth", "resnet32x4", model, wrong))
    assert "key 'layer3.0.conv1.weight' has shape [256, 128, 1, 1], the model [256, 128, 3, 3]" in (
        text
    )
    assert "missing" not in text and "unexpected" not in text
    short = OrderedDict((k, v) for k, v in state.items() if k != "layer2.3.bn1.running_var")
    text = _error(write_checkpoint(tmp_path / "short.pth", "resnet32x4", model, short))
    assert "missing key 'stages.1.3.bn1.running_var' (the zoo's name)" in text
    # a teacher of another network (resnet56 for resnet110): every extra block is missing
    small = write_checkpoint(tmp_path / "r56.pth", "resnet56", random_model("resnet56"))
    text = _error(small, "resnet110")
    assert "missing key 'stages.0.9.conv1.weight' (+" in text and "not a state_dict of" in text
    # 100 classes for a 10-class dataset: the classifier's shape
    text = _error(write_checkpoint(tmp_path / "c.pth", "resnet32x4", model), classes=10)
    assert "key 'fc.weight' has shape [100, 256], the model [10, 256] (+1 more)" in text
    # saved from a DataParallel model: every key prefixed
    wrapped = OrderedDict((f"module.{k}", v) for k, v in state.items())
    text = _error(write_checkpoint(tmp_path / "dp.pth", "resnet32x4", model, wrapped))
    assert "unexpected key 'module.conv1.weight' (+205 more)" in text


def test_a_file_weights_only_refuses_or_without_a_state_dict_is_one_line(tmp_path):
    state = mdistiller_state("resnet32x4", random_model("resnet32x4"))
    # CRD's <model>_last.pth holds its argparse options: not loadable with weights_only=True
    torch.save({"opt": argparse.Namespace(model="resnet32x4"), "model": state}, tmp_path / "l.pth")
    assert "torch cannot load it with weights_only=True" in _error(tmp_path / "l.pth")
    torch.save({"epoch": 240, "accuracy": 70.0}, tmp_path / "n.pth")
    assert "neither a state_dict nor a checkpoint" in _error(tmp_path / "n.pth")
    (tmp_path / "t.pth").write_text("not a checkpoint")
    assert "torch cannot load it" in _error(tmp_path / "t.pth")
    with pytest.raises(
        ReproError, match=f"weights file {tmp_path}/x.pth not found; set config key {KEY}"
    ):
        load_teacher_weights("resnet32x4", tmp_path / "x.pth", 100, 3, KEY)


def test_a_released_teacher_is_scored_on_the_test_split_with_its_own_numbers(tmp_path, capsys):
    """``repro-distill evaluate`` on a CIFAR-shaped set: the loaded teacher's accuracy (labels
    chosen so that exactly 13 of 20 predictions are right), the file's epoch and accuracy."""
    from repro.distill import cli

    mean, std = [0.5071, 0.4867, 0.4408], [0.2675, 0.2565, 0.2761]
    model = random_model("resnet56")
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8)
    x = torch.from_numpy(images).permute(0, 3, 1, 2).float() / 255
    x = (x - torch.tensor(mean).view(1, 3, 1, 1)) / torch.tensor(std).view(1, 3, 1, 1)
    with torch.no_grad():
        predicted = model(x)[0].argmax(1).numpy()
    labels = np.where(np.arange(20) < 13, predicted, (predicted + 1) % 100)
    data = tmp_path / "cifar100"
    classes = [f"c{i}" for i in range(100)]
    write_arrays(data, {"train": (images, labels), "test": (images, labels)}, classes, "cifar100",
                 {})  # fmt: skip
    path = write_checkpoint(tmp_path / "t" / "resnet56_vanilla" / "ckpt_epoch_240.pth",
                            "resnet56", model)  # fmt: skip
    params = {
        "teacher": "resnet56", "dataset": "cifar100", "teacher_weights": str(path),
        "teacher_weights_key": KEY,
        "train": {"mean": mean, "std": std, "device": "cpu", "threads": 1, "eval_batch_size": 8},
    }  # fmt: skip
    out = tmp_path / "vanilla" / "cifar100" / "resnet56" / "pretrained" / "result.json"
    args = ["evaluate", "--data", str(data), "--out", str(out)]
    assert cli.main([*args, "--params", json.dumps(params)]) == 0
    result = json.loads(out.read_text())
    assert result["best_top1"] == result["final_top1"] == 65.0 and result["test_n"] == 20
    assert result["pretrained"] is True and result["epochs"] == 0
    assert result["checkpoint"] == {"epoch": 240, "accuracy": pytest.approx(79.42)}
    assert result["weights"] == str(path) and len(result["weights_sha256"]) == 64
    # a file that does not fit: exit 2, one line naming the file and the key
    params["teacher"] = "resnet110"
    capsys.readouterr()
    assert cli.main([*args[:-1], str(tmp_path / "x.json"), "--params", json.dumps(params)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(path) in err and "missing key 'stages.0.9" in err


TABLES = {
    "tables": [
        {"title": "CIFAR-100", "dataset": "cifar100", "recipe": "cifar",
         "pairs": ["vgg13-vgg8", "wrn_40_2-ShuffleV1", "wrn_16_2-resnet8"],
         "variants": ["kd", "energy_kd"]},
        {"title": "LT", "dataset": "cifar100-lt100", "recipe": "cifar",
         "pairs": ["vgg13-vgg8"], "variants": ["kd"]},
    ]
}  # fmt: skip


def _config(folder: Path) -> dict:
    pool = {
        "seeds": [0, 1],
        "recipes": {"cifar": {"epochs": 240}},
        "vanilla_recipes": {"default": "cifar"},
        "variants": {
            "kd": {"method": "kd"},
            "energy_kd": {"method": "kd", "args": {"temperature": {"policy": "energy"}}},
        },
        "mdistiller_teachers": {"cifar100": str(folder)},
        "pretrained_teachers": {"cifar100": {"wrn_40_2": "/w/mine.pth"}},
    }
    return {"kd": pool, "energy_kd": TABLES}


def test_the_mdistiller_folder_makes_every_released_teacher_a_scored_file(tmp_path):
    folder = tmp_path / "cifar_teachers"
    for teacher in plan.MDISTILLER_TEACHERS:
        if teacher != "vgg13":  # one file is not there
            (folder / f"{teacher}_vanilla").mkdir(parents=True)
            (folder / f"{teacher}_vanilla" / "ckpt_epoch_240.pth").touch()
    config = _config(folder)
    pool = config["kd"]
    vgg13 = f"{folder}/vgg13_vanilla/ckpt_epoch_240.pth"
    assert plan.pretrained_teachers(pool)["cifar100"] == {
        **{t: f"{folder}/{t}_vanilla/ckpt_epoch_240.pth" for t in plan.MDISTILLER_TEACHERS},
        "wrn_40_2": "/w/mine.pth",  # the teacher's own entry wins
    }
    assert plan.pretrained_weights(pool, "cifar100", "vgg13") == vgg13
    assert plan.pretrained_key("cifar100", "vgg13", pool) == KEY
    assert plan.pretrained_key("cifar100", "wrn_40_2", pool) == (
        "kd.pretrained_teachers.cifar100.wrn_40_2"
    )
    # a teacher mdistiller does not release, and another dataset, are trained here
    assert not plan.is_pretrained(pool, "cifar100", "wrn_16_2")
    assert not plan.is_pretrained(pool, "cifar100-lt100", "vgg13")
    cell = plan.Cell("cifar100", "vgg13", "vgg8", "kd", "cifar", 1)
    params = plan.kd_params(pool, cell)
    assert params["teacher_weights"] == vgg13 and params["teacher_weights_key"] == KEY
    # a job's input once the file is there (until then the pre-flight names it: below)
    assert plan.teacher_input(config, "res", {"dataset": "cifar100", "teacher": "vgg13"}) == []
    resnet110 = f"{folder}/resnet110_vanilla/ckpt_epoch_240.pth"
    wildcards = {"dataset": "cifar100", "teacher": "resnet110", "model": "resnet110"}
    assert plan.teacher_input(config, "res", wildcards) == [resnet110]
    assert plan.pretrained_input(config, wildcards) == [resnet110]
    alone = plan.paper_vanilla(config, "energy-kd")
    assert ("cifar100", "vgg13", None) in alone and ("cifar100", "wrn_40_2", None) in alone
    assert ("cifar100", "wrn_16_2", 0) in alone and ("cifar100-lt100", "vgg13", 0) in alone
    scored = plan.pretrained_eval_params(pool, "cifar100", "vgg13")
    assert scored["teacher_weights"] == vgg13 and scored["teacher_weights_key"] == KEY
    # the pre-flight names the key and the missing file (one line), nothing for the others
    assert plan.preflight(config, None, ["energy-kd"]) == [
        f"config key {KEY}: no file {vgg13} (the folder extracted from mdistiller's "
        "cifar_teachers.tar holds <teacher>_vanilla/ckpt_epoch_240.pth)"
    ]
    # the Energy KD figures draw from the first pair's released teacher, not a model.pt
    report = plan.report_params(config, "energy-kd")
    assert report["figure_cell"][:2] == ["cifar100", "vgg13"]
    assert report["figure_teacher_weights"] == vgg13
    assert report["figure_teacher_weights_key"] == KEY
    (folder / "vgg13_vanilla").mkdir()
    (folder / "vgg13_vanilla" / "ckpt_epoch_240.pth").touch()
    assert plan.teacher_input(config, "res", {"dataset": "cifar100", "teacher": "vgg13"}) == [vgg13]
    assert plan.figure_inputs(config, "res", "energy-kd", {}) == [
        vgg13, "data/cifar100/meta.json"
    ]  # fmt: skip
    # a folder that is not there: one line
    pool["mdistiller_teachers"]["cifar100"] = str(tmp_path / "nowhere")
    assert plan.preflight(config, None, ["energy-kd"]) == [
        f"config key {KEY}: no folder {tmp_path}/nowhere (extract mdistiller's "
        "cifar_teachers.tar and set the key to its cifar_teachers/ folder)"
    ]
    # without the folder: trained here, and the scorecard params are as before
    del pool["mdistiller_teachers"]
    assert not plan.is_pretrained(pool, "cifar100", "vgg13")
    assert "figure_teacher_weights" not in plan.report_params(config, "energy-kd")
    assert plan.figure_inputs(config, "res", "energy-kd", {})[0] == (
        "res/vanilla/cifar100/vgg13/seed0/model.pt"
    )


def test_the_figures_of_a_run_with_a_released_teacher_load_that_teacher(tmp_path):
    """Energy KD's and CSKD's figures draw from the first table's first pair: with
    ``kd.mdistiller_teachers`` its teacher is the released file (the report params name it)."""
    from repro.distill.report import FigureContext

    model = random_model("resnet56")
    path = write_checkpoint(tmp_path / "ckpt_epoch_240.pth", "resnet56", model)
    images = np.zeros((4, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(4)
    classes = [f"c{i}" for i in range(100)]
    write_arrays(tmp_path / "data" / "cifar100", {"test": (images, labels)}, classes, "c", {})
    run = {"dataset": "cifar100", "teacher": "resnet56", "student": "resnet20",
           "variant": "energy_kd", "seed": 0}  # fmt: skip
    params = {"pretrained": [["cifar100", "resnet56"]], "teacher_seed": 0,
              "figure_teacher_weights": str(path), "figure_teacher_weights_key": KEY}  # fmt: skip
    context = FigureContext(params, tmp_path / "res", tmp_path / "data", tmp_path, [], [], run)
    data, teacher, n = context.figure_data("test")
    assert n == 100 and len(data) == 4
    assert all(torch.equal(teacher.state_dict()[k], v) for k, v in model.state_dict().items())
    del params["figure_teacher_weights"]
    with pytest.raises(ReproError, match="pretrained teacher whose file the params do not name"):
        context.figure_data("test")
