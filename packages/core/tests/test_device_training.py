import json
import math

import pytest
import torch

from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.core.device import resolve_device
from repro.core.training import NonFiniteLoss, TrainLoop, seed_period


@pytest.mark.parametrize("name", ["auto", "cpu"])
def test_device_names_resolve_on_a_cpu_machine(name, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert resolve_device(name) == torch.device("cpu")


@pytest.mark.parametrize(
    ("name", "expected"),
    [("cuda", "CUDA is not available"), ("cuda:1", "CUDA is not available"), ("gpu", "not a")],
)
def test_bad_or_missing_devices_name_the_key(name, expected, monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ReproError, match=rf"^train\.device: '{name}' .*{expected}"):
        resolve_device(name, "train.device")


def test_gpu_index_beyond_the_visible_ones_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert resolve_device("cuda:1") == torch.device("cuda:1")
    with pytest.raises(ReproError, match="only 2 GPU"):
        resolve_device("cuda:2")


def test_seed_period_seeds_the_generator_and_the_global_rng():
    a = seed_period(3, 7)
    first = (torch.rand(2, generator=a), torch.rand(2))
    b = seed_period(3, 7)
    assert torch.equal(first[0], torch.rand(2, generator=b)) and torch.equal(
        first[1], torch.rand(2)
    )
    assert not torch.equal(first[0], torch.rand(2, generator=seed_period(3, 8)))


def _run(out, total, stop_at=None, nan_at=None):
    """A tiny deterministic training run on the loop: w -> w - lr * grad((w - 3)^2)."""
    w = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([w], lr=0.1)
    loop = TrainLoop(out, total=total, unit="epoch", name="toy")

    def restore(payload):
        w.data.copy_(payload["w"])
        opt.load_state_dict(payload["opt"])

    start = loop.resume(restore)
    for epoch in range(start, total + 1):
        for step in (1, 2):
            loss = ((w - 3) ** 2).sum()
            if (epoch, step) == nan_at:
                loss = loss * float("nan")
            values = loop.check({"loss": loss}, epoch, step)
            opt.zero_grad()
            loss.backward()
            opt.step()
        loop.record({"epoch": epoch, "loss": values["loss"]})
        loop.save(epoch, {"w": w.detach().clone(), "opt": opt.state_dict()})
        if epoch == stop_at:
            return None, loop
    return loop.finish({"w": w.detach()}, {"w": float(w.detach())}), loop


def test_resume_after_a_stop_ends_exactly_where_an_uninterrupted_run_ends(tmp_path):
    full, _ = _run(tmp_path / "a", 5)
    _run(tmp_path / "b", 5, stop_at=2)
    resumed, loop = _run(tmp_path / "b", 5)
    assert resumed == full  # bit-identical weights after resuming at epoch 3
    rows = (tmp_path / "b" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "epoch,loss" and [r.split(",")[0] for r in rows[1:]] == list("12345")
    assert json.loads((tmp_path / "b" / "result.json").read_text()) == full
    assert load_checkpoint(tmp_path / "b" / "model.pt")["w"].item() == pytest.approx(full["w"])
    # hand computation: each step multiplies (w - 3) by 0.8; 10 steps from w = 0
    assert full["w"] == pytest.approx(3 - 3 * 0.8**10)


def test_nan_loss_stops_with_one_line_and_keeps_the_last_good_checkpoint(tmp_path):
    _run(tmp_path, 5, stop_at=2)
    before = (tmp_path / "checkpoint.pt").read_bytes()
    with pytest.raises(NonFiniteLoss) as err:
        _run(tmp_path, 5, nan_at=(4, 2))
    message = str(err.value)
    assert "\n" not in message
    assert message == (
        f"toy: loss became nan at epoch 4, step 2; training stopped and the last good "
        f"checkpoint is {tmp_path / 'checkpoint.pt'} (epoch 3)"
    )
    assert load_checkpoint(tmp_path / "checkpoint.pt")["period"] == 3  # epoch 3's, intact
    assert before != (tmp_path / "checkpoint.pt").read_bytes()  # epoch 3 was saved, not 4
    assert not (tmp_path / "result.json").exists()


def test_infinite_loss_before_any_checkpoint(tmp_path):
    loop = TrainLoop(tmp_path, total=1, name="x")
    with pytest.raises(NonFiniteLoss, match="kd became inf at epoch 1, step 3; .*no checkpoint"):
        loop.check({"ce": torch.tensor(1.0), "kd": torch.tensor(math.inf)}, 1, 3)
    assert loop.check({"ce": torch.tensor(0.5)}, 1, 1) == {"ce": 0.5}


def test_a_foreign_checkpoint_is_refused(tmp_path):
    torch.save({"epoch": 3}, tmp_path / "checkpoint.pt")
    with pytest.raises(ReproError, match="not a checkpoint of this trainer"):
        TrainLoop(tmp_path, total=3).resume(lambda p: None)


def test_a_killed_writes_temporary_is_removed_and_the_checkpoint_kept(tmp_path):
    from repro.core.atomic import atomic_path
    from repro.core.checkpoint import save_checkpoint

    save_checkpoint(tmp_path / "checkpoint.pt", {"period": 2, "payload": {"w": 1}, "history": []})
    with pytest.raises(KeyboardInterrupt), atomic_path(tmp_path / "checkpoint.pt") as tmp:
        tmp.write_bytes(b"half")
        # what a SIGKILL leaves: the temporary stays (the finally block never runs)
        kept = tmp.with_name(tmp.name.replace(".tmp", "x.tmp"))
        kept.write_bytes(b"half")
        raise KeyboardInterrupt
    (tmp_path / "notes.tmp").write_text("not ours")
    loop = TrainLoop(tmp_path, total=3)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.pt", "notes.tmp"]
    assert loop.resume(lambda payload: None) == 3


def test_a_checkpoint_of_other_params_is_not_resumed(tmp_path):
    """A job replanned after an edit must not continue the old run's checkpoint."""
    loop = TrainLoop(tmp_path, total=3, params={"lr": 0.1})
    loop.save(2, {"w": torch.ones(1)})
    restored = []
    assert TrainLoop(tmp_path, total=3, params={"lr": 0.1}).resume(restored.append) == 3
    assert len(restored) == 1
    assert TrainLoop(tmp_path, total=3, params={"lr": 0.2}).resume(restored.append) == 1
    assert len(restored) == 1  # nothing restored from the other run
