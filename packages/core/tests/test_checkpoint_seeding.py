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


def _run(code: str) -> str:
    import subprocess
    import sys

    return subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()


def test_deterministic_switches_equal_torchs_own_without_loading_dynamo():
    """seed_everything sets what torch.use_deterministic_algorithms(True, warn_only=True) sets,
    without importing torch._dynamo (seconds per job); with inductor already loaded, its flag
    too."""
    flags = (
        "import sys, torch; print(torch.are_deterministic_algorithms_enabled(), "
        "torch.is_deterministic_algorithms_warn_only_enabled(), 'torch._dynamo' in sys.modules)"
    )
    ours = _run(f"from repro.core.seeding import seed_everything; seed_everything(0); {flags}")
    assert ours == ["True", "True", "False"]
    torchs = _run(
        f"import torch; torch.use_deterministic_algorithms(True, warn_only=True); {flags}"
    )
    assert torchs[:2] == ours[:2]
    loaded = _run(
        "import torch._inductor.config as c; from repro.core.seeding import seed_everything; "
        "seed_everything(0); print(c.deterministic)"
    )
    assert loaded == ["True"]
