import pytest
import torch

from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint, save_checkpoint
from repro.core.seeding import generator, seed_everything


class NotAllowed:
    pass


def test_checkpoint_round_trip(tmp_path):
    state = {"epoch": 3, "model": {"w": torch.arange(6.0).reshape(2, 3)}, "name": "x"}
    save_checkpoint(tmp_path / "c.pt", state)
    back = load_checkpoint(tmp_path / "c.pt")
    assert back["epoch"] == 3 and back["name"] == "x"
    assert torch.equal(back["model"]["w"], state["model"]["w"])


def test_loading_uses_weights_only(tmp_path):
    torch.save({"obj": NotAllowed()}, tmp_path / "evil.pt")
    with pytest.raises(ReproError, match="evil.pt: cannot load checkpoint"):
        load_checkpoint(tmp_path / "evil.pt")


def test_missing_checkpoint_is_one_line(tmp_path):
    with pytest.raises(ReproError, match="checkpoint not found"):
        load_checkpoint(tmp_path / "none.pt")


def test_same_seed_same_numbers():
    seed_everything(7)
    a = torch.rand(5)
    seed_everything(7)
    assert torch.equal(a, torch.rand(5))
    assert torch.equal(torch.rand(3, generator=generator(1)), torch.rand(3, generator=generator(1)))
