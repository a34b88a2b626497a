"""The fake torchvision weight files (``repro.distill.fake``) load through the package's own
loaders, strictly and with ``weights_only=True``."""

from importlib.metadata import entry_points

import pytest
import torch
import torchvision

from repro.distill import fake
from repro.distill.models import build_model, load_init_weights, load_teacher_weights


def test_a_file_is_torchvisions_state_dict_and_loads_as_teacher_and_init(tmp_path):
    path = fake.write_torchvision("resnet18", tmp_path, seed=3)
    assert path.name == "resnet18-f37072fd.pth"
    state = torch.load(path, map_location="cpu", weights_only=True)
    ref = torchvision.models.resnet18().state_dict()
    assert list(state) == list(ref)  # every key, buffers included, in torchvision's order
    assert "bn1.num_batches_tracked" in state
    assert {k: v.shape for k, v in state.items()} == {k: v.shape for k, v in ref.items()}
    torchvision.models.resnet18().load_state_dict(state, strict=True)
    teacher = load_teacher_weights("resnet18_imagenet", path, 1000, 3)
    assert torch.equal(teacher.net.fc.weight, state["fc.weight"])
    student = load_init_weights(build_model("resnet18_imagenet", 200, 3), path, "k")
    assert torch.equal(student.net.conv1.weight, state["conv1.weight"])
    assert student.net.fc.weight.shape == (200, 512)  # a new classifier for 200 classes
    again = fake.write_torchvision("resnet18", tmp_path / "again", seed=3)
    again = torch.load(again, map_location="cpu", weights_only=True)
    assert all(torch.equal(again[k], v) for k, v in state.items())  # seeded: the same values


def test_the_plugin_is_registered():
    (ep,) = [e for e in entry_points(group="repro.fake") if e.name == "distill"]
    assert ep.load() is fake.write_fakes


@pytest.mark.slow
def test_write_fakes_overlay_and_every_file(tmp_path):
    overlay = fake.write_fakes(tmp_path / "distill")
    kd = overlay["kd"]
    r18, r34, r50 = (str(tmp_path / "distill" / fake.TORCHVISION_FILES[a]) for a in
                     ("resnet18", "resnet34", "resnet50"))  # fmt: skip
    assert kd["pretrained_teachers"] == {
        "imagenet": {"resnet34_imagenet": r34, "resnet50_imagenet": r50}
    }
    assert kd["init_weights"] == {
        d: {"resnet18_imagenet": r18, "resnet34_imagenet": r34}
        for d in ("cub200", "mit67", "stanford40", "dogs")
    }
    r152 = overlay["mhsan"]["train"]["model"]["backbone_weights"]
    alex = overlay["burst_sr"]["lpips_weights"]
    assert r152.endswith("resnet152-394f9c45.pth") and alex.endswith("alexnet-owt-7be5be79.pth")
    for name, path in (("resnet34_imagenet", r34), ("resnet50_imagenet", r50)):
        load_teacher_weights(name, path, 1000, 3)
    for arch, path in (("resnet152", r152), ("alexnet", alex)):
        state = torch.load(path, map_location="cpu", weights_only=True)
        getattr(torchvision.models, arch)().load_state_dict(state, strict=True)
