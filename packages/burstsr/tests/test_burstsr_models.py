"""Baselines: geometry of the interpolation baseline, network shapes, resumable training."""

import pytest
import torch
from burstsr_tiny import TINY, tiny_section

from repro.burstsr import camera, models, plan, train
from repro.burstsr.params import TrainParams
from repro.core import ReproError
from repro.core.checkpoint import load_checkpoint
from repro.core.params import parse


def test_upsample_puts_lr_pixel_i_on_hr_pixel_s_times_i():
    lr = torch.rand(1, 3, 6, 7)
    for mode in ("bilinear", "bicubic"):
        up = models.upsample_aligned(lr, 4, mode)
        assert up.shape == (1, 3, 24, 28)
        torch.testing.assert_close(up[..., ::4, ::4], lr, atol=1e-5, rtol=0)
    mid = models.upsample_aligned(lr, 4, "bilinear")[..., 0, 2]  # half-way between columns
    torch.testing.assert_close(mid, (lr[..., 0, 0] + lr[..., 0, 1]) / 2)


def test_demosaic_baseline_recovers_a_constant_colour():
    img = torch.tensor([0.2, 0.5, 0.8]).view(1, 3, 1, 1).expand(1, 3, 16, 16)
    burst = camera.mosaic(img)[:, None]
    out = models.demosaic_upsample(burst, "bicubic")
    assert out.shape == (1, 3, 64, 64)
    torch.testing.assert_close(out[0, :, 20:40, 20:40].mean((1, 2)), torch.tensor([0.2, 0.5, 0.8]))


def test_warp_moves_by_the_flow():
    x = torch.zeros(1, 1, 9, 9)
    x[0, 0, 4, 6] = 1.0
    flow = torch.zeros(1, 2, 9, 9)
    flow[:, 0] = 2.0  # sample 2 px to the right
    out = models.warp(x, flow)
    assert out[0, 0, 4, 4] == 1.0 and out.sum() == 1.0


def test_networks_shapes_and_residual_start():
    cfg = models.NetConfig(**TINY)
    burst = torch.rand(2, 5, 4, 6, 6)
    flow = torch.zeros(2, 5, 2, 6, 6)
    for net in (
        models.SingleFrameNet(cfg),
        models.BurstNet(cfg),
        models.BurstNet(cfg, models.FlowNet(cfg)),
    ):
        assert net(burst, flow).shape == (2, 3, 48, 48)
        assert net(burst[:, :1], flow[:, :1]).shape == (2, 3, 48, 48)
    assert models.FlowNet(cfg)(burst).shape == (2, 5, 2, 6, 6)
    res = models.NetConfig(**TINY, residual=True, normalize=True)
    torch.testing.assert_close(
        models.BurstNet(res)(burst, flow), models.demosaic_upsample(burst, "bilinear")
    )
    # DBSR widths: 3.64 M parameters without PWC-Net (13.01 M with its 9.37 M)
    assert abs(models.count_parameters(models.BurstNet(models.NetConfig())) / 1e6 - 3.64) < 0.01


def _section(root, iterations):
    models = {"b": {"kind": "burst", "align": "gt"}, "f": {"kind": "flownet"}}
    return tiny_section(root, iterations, 2, models)


def _train(root, model, iterations, out, seed, section=None):
    params = plan.train_params({"burst_sr": section or _section(root, iterations)}, model, seed)
    result = train.train(parse(TrainParams, params), out)
    return result, load_checkpoint(out / "model.pt")


def test_training_is_deterministic_per_seed(tmp_path, zurich):
    _, full = _train(tmp_path / "z", "b", 3, tmp_path / "full", 3)
    _, again = _train(tmp_path / "z", "b", 3, tmp_path / "again", 3)
    _, other = _train(tmp_path / "z", "b", 3, tmp_path / "other", 4)
    assert again["history"] == full["history"] != other["history"]
    for k, v in full["state_dict"].items():
        assert torch.equal(v, again["state_dict"][k])
    model, _ = train.load_model(tmp_path / "full" / "model.pt", torch.device("cpu"))
    assert isinstance(model, models.BurstNet)
    rows = (tmp_path / "full" / "metrics.csv").read_text().splitlines()
    assert rows[0] == "iteration,loss,lr,seconds" and len(rows) == 4


def test_resume_from_checkpoint_matches_uninterrupted(tmp_path, zurich, monkeypatch):
    from repro.core import training

    _, full = _train(tmp_path / "z", "f", 4, tmp_path / "full", 5)
    real = training.save_checkpoint

    def crash_after_checkpoint(path, state):
        real(path, state)
        if path.name == "checkpoint.pt":
            raise KeyboardInterrupt

    monkeypatch.setattr(training, "save_checkpoint", crash_after_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        _train(tmp_path / "z", "f", 4, tmp_path / "run", 5)
    monkeypatch.setattr(training, "save_checkpoint", real)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["period"] == 2
    assert not (tmp_path / "run" / "model.pt").exists()
    _, resumed = _train(tmp_path / "z", "f", 4, tmp_path / "run", 5)
    assert resumed["history"] == full["history"]
    assert all(torch.equal(v, resumed["state_dict"][k]) for k, v in full["state_dict"].items())


def test_a_nan_loss_stops_burst_training_with_one_line(tmp_path, zurich, monkeypatch):
    from repro.core.training import NonFiniteLoss

    calls = {"n": 0}
    real = train.l1_loss

    def poisoned(pred, gt, border):
        calls["n"] += 1
        loss = real(pred, gt, border)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(train, "l1_loss", poisoned)
    with pytest.raises(NonFiniteLoss) as err:
        _train(tmp_path / "z", "b", 4, tmp_path / "nan", 1)
    assert str(err.value) == (
        "burst-sr b: loss became nan at iteration 3; training stopped and the last good "
        f"checkpoint is {tmp_path / 'nan' / 'checkpoint.pt'} (iteration 2)"
    )
    assert load_checkpoint(tmp_path / "nan" / "checkpoint.pt")["period"] == 2


def _pwc_weights(path):
    """A random PWC-Net state dict saved as the port's file (its original key names)."""
    from repro.burstsr.pwcnet import PWCNet

    torch.manual_seed(7)
    torch.save(PWCNet().state_dict(), path)
    return path


def test_pwcnet_aligned_burst_model_trains_and_its_checkpoint_is_self_contained(tmp_path, zurich):
    section = _section(tmp_path / "z", 2)
    section["models"]["p"] = {"kind": "burst", "align": "pwcnet"}
    with pytest.raises(ReproError, match="burst_sr.pwcnet_weights: not set"):
        _train(tmp_path / "z", "p", 2, tmp_path / "p", 1, section)
    section["pwcnet_weights"] = str(_pwc_weights(tmp_path / "pwc.pth"))
    _, state = _train(tmp_path / "z", "p", 2, tmp_path / "p", 1, section)
    pwc_keys = [k for k in state["state_dict"] if k.startswith("flownet.net.")]
    assert len(pwc_keys) == 126  # the whole PWC-Net travels with the checkpoint
    before = torch.load(tmp_path / "pwc.pth", weights_only=True)
    assert all(torch.equal(state["state_dict"][f"flownet.net.{k}"], v) for k, v in before.items())
    (tmp_path / "pwc.pth").unlink()  # evaluation does not need the user's file any more
    model, _ = train.load_model(tmp_path / "p" / "model.pt", torch.device("cpu"))
    burst = torch.rand(1, 3, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert model(burst).shape == (1, 3, 64, 64)  # packed 8 px -> HR 8 * 2 * 4
    assert state["parameters"] == models.count_parameters(model)  # frozen PWC-Net not counted
