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


def test_seeding_pins_deterministic_kernels_without_importing_inductor():
    """The flag torch.use_deterministic_algorithms(True, warn_only=True) sets, read back
    through torch's public getters, in a fresh process that never loads torch._inductor."""
    import subprocess
    import sys

    code = (
        "import sys, torch\n"
        "from repro.core.seeding import seed_everything\n"
        "assert not torch.are_deterministic_algorithms_enabled()\n"
        "seed_everything(0)\n"
        "assert torch.are_deterministic_algorithms_enabled()\n"
        "assert torch.is_deterministic_algorithms_warn_only_enabled()\n"
        "assert torch.backends.cudnn.deterministic and not torch.backends.cudnn.benchmark\n"
        "print('torch._inductor.config' in sys.modules, 'torch._dynamo' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]


def test_a_failed_checkpoint_write_is_one_line_and_keeps_the_previous_file(tmp_path, monkeypatch):
    """torch reports a full disk as a RuntimeError from its zip writer; the error names the
    file and the free space, and the checkpoint already there is left as it was."""
    path = tmp_path / "c.pt"
    save_checkpoint(path, {"epoch": 1})

    def full_disk(obj, f):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise RuntimeError("basic_ios::clear: iostream error\nmore detail")

    monkeypatch.setattr(torch, "save", full_disk)
    with pytest.raises(
        ReproError, match=r"c\.pt: could not write the checkpoint \(.* GiB free"
    ) as e:
        save_checkpoint(path, {"epoch": 2})
    assert "iostream error" in str(e.value) and "\n" not in str(e.value)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.pt"]  # no temporary file left
