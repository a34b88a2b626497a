"""PWC-Net: cost volume, warp, the port's weight-file layout, loading, resizing and directions."""

import numpy as np
import pytest
import torch
from torch import nn

from repro.burstsr import pwcnet
from repro.core import ReproError

ORD = ["One", "Two", "Thr", "Fou", "Fiv", "Six"]


def port_layout() -> dict[str, tuple[int, ...]]:
    """Key -> shape of sniklaus/pytorch-pwc's ``network-default.pytorch`` (as distributed).

    Written from the port's layer table: pyramid 3 -> 16, 32, 64, 96, 128, 196 (three 3x3 convs
    per level, Sequential indices 0/2/4); decoder inputs 81 + feat + 2 + 2 (level 6: 81);
    dense convs 128, 128, 96, 64, 32 then a 2-channel flow conv; 4x4 stride-2 transposed convs
    for the upsampled flow and features; refiner 565 -> 128, 128, 128, 96, 64, 32, 2.
    """
    keys: dict[str, tuple[int, ...]] = {}

    def conv(prefix, cout, cin):
        keys[f"{prefix}.weight"] = (cout, cin, 3, 3)
        keys[f"{prefix}.bias"] = (cout,)

    def deconv(prefix, cin, cout):
        keys[f"{prefix}.weight"] = (cin, cout, 4, 4)  # ConvTranspose2d: (in, out, k, k)
        keys[f"{prefix}.bias"] = (cout,)

    widths = [3, 16, 32, 64, 96, 128, 196]
    for i, name in enumerate(ORD):
        conv(f"moduleExtractor.module{name}.0", widths[i + 1], widths[i])
        conv(f"moduleExtractor.module{name}.2", widths[i + 1], widths[i + 1])
        conv(f"moduleExtractor.module{name}.4", widths[i + 1], widths[i + 1])
    current = {2: 117, 3: 149, 4: 181, 5: 213, 6: 81}
    for level in (2, 3, 4, 5, 6):
        dec = f"module{ORD[level - 1]}"
        if level < 6:
            deconv(f"{dec}.moduleUpflow", 2, 2)
            deconv(f"{dec}.moduleUpfeat", current[level + 1] + 128 + 128 + 96 + 64 + 32, 2)
        cin = current[level]
        for name, cout in zip(ORD[:5], [128, 128, 96, 64, 32], strict=True):
            conv(f"{dec}.module{name}.0", cout, cin)
            cin += cout
        conv(f"{dec}.moduleSix.0", 2, cin)
    refiner = [(128, 565), (128, 128), (128, 128), (96, 128), (64, 96), (32, 64), (2, 32)]
    for i, (cout, cin) in enumerate(refiner):
        conv(f"moduleRefiner.moduleMain.{2 * i}", cout, cin)
    return keys


def close(actual, expected, atol=1e-6):
    """Elementwise closeness (numpy; torch.testing imports torch.distributed, seconds)."""
    np.testing.assert_allclose(actual.detach().numpy(), expected.detach().numpy(), atol=atol)


def random_port_state(seed=0, scale=0.02):
    g = torch.Generator().manual_seed(seed)
    return {k: scale * torch.randn(s, generator=g) for k, s in port_layout().items()}


# 1. cost volume -------------------------------------------------------------------------


def test_correlation_equals_brute_force():
    g = torch.Generator().manual_seed(1)
    a = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64)
    b = torch.randn(2, 5, 6, 7, generator=g, dtype=torch.float64)
    an, bn = a.numpy(), b.numpy()
    ref = np.zeros((2, 81, 6, 7))
    for n in range(2):
        for dy in range(-4, 5):
            for dx in range(-4, 5):
                ch = (dy + 4) * 9 + (dx + 4)
                for y in range(6):
                    for x in range(7):
                        if 0 <= y + dy < 6 and 0 <= x + dx < 7:
                            ref[n, ch, y, x] = np.dot(an[n, :, y, x], bn[n, :, y + dy, x + dx]) / 5
    out = pwcnet.correlation(a, b)
    assert out.shape == (2, 81, 6, 7)
    np.testing.assert_allclose(out.numpy(), ref, atol=1e-12)


# 2. backward warp -----------------------------------------------------------------------


def test_backward_warp_integer_translation():
    g = torch.Generator().manual_seed(2)
    h, w = 12, 16
    img = torch.rand(2, 3, h, w, generator=g, dtype=torch.float64)
    dx, dy = 3, -2  # out(y, x) = img(y - 2, x + 3)
    rolled = torch.roll(img, shifts=(-dy, -dx), dims=(-2, -1))
    exact = torch.empty(2, 2, h, w, dtype=torch.float64)
    exact[:, 0], exact[:, 1] = dx, dy
    out = pwcnet.backward_warp(img, exact, toolkit_warp=False)
    np.testing.assert_allclose(out[..., 2:, : w - 3], rolled[..., 2:, : w - 3], atol=1e-12)
    # outside: the sample leaves the image, the ones-channel mask zeroes it
    assert (out[..., :2, :] == 0).all() and (out[..., :, w - 3 :] == 0).all()
    # the port's normalisation moves by flow * W / (W - 1): undo it to get the same shift
    port = exact.clone()
    port[:, 0] *= (w - 1) / w
    port[:, 1] *= (h - 1) / h
    out_port = pwcnet.backward_warp(img, port, toolkit_warp=True)
    np.testing.assert_allclose(out_port[..., 2:, : w - 3], rolled[..., 2:, : w - 3], atol=1e-9)


def test_toolkit_warp_moves_by_w_over_w_minus_1():
    g = torch.Generator().manual_seed(3)
    h, w = 6, 16
    img = torch.rand(1, 2, h, w, generator=g, dtype=torch.float64)
    flow = torch.zeros(1, 2, h, w, dtype=torch.float64)
    flow[:, 0] = 3.0  # toolkit: x + 3 * 16 / 15 = x + 3.2
    out = pwcnet.backward_warp(img, flow, toolkit_warp=True)
    ref = 0.8 * img[..., 3:15] + 0.2 * img[..., 4:16]
    np.testing.assert_allclose(out[..., : w - 4], ref[..., : w - 4], atol=1e-9)


# 3. the weight-file layout --------------------------------------------------------------


def test_state_dict_matches_port_file_layout():
    expected = port_layout()
    got = {k: tuple(v.shape) for k, v in pwcnet.PWCNet().state_dict().items()}
    assert got == expected
    assert len(expected) == 126
    # spot checks straight from the port's constructor arguments
    assert expected["moduleTwo.moduleUpfeat.weight"] == (597, 2, 4, 4)
    assert expected["moduleFiv.moduleUpfeat.weight"] == (529, 2, 4, 4)
    assert expected["moduleSix.moduleSix.0.weight"] == (2, 529, 3, 3)
    assert expected["moduleRefiner.moduleMain.0.weight"] == (128, 565, 3, 3)
    assert "moduleSix.moduleUpflow.weight" not in expected  # level 6 has no upsampling
    # 9,374,274 parameters (the paper reports 8.75 M for PWC-Net; the port has 9.37 M)
    n_params = sum(p.numel() for p in pwcnet.PWCNet().parameters())
    assert n_params == sum(int(np.prod(s)) for s in expected.values()) == 9_374_274


def test_decoder_wiring_follows_the_port():
    """Level-5 decoder input = [leaky(cost(f1, warp(f2, 0.625 * upflow))), f1, upflow, upfeat],
    dense stages prepend their output, and the result is flow_2 + refiner(feat_2)."""
    torch.manual_seed(7)
    net = pwcnet.PWCNet().eval()
    assert [getattr(net, f"module{n}").warp_gain for n in ORD[1:5]] == [5.0, 2.5, 1.25, 0.625]
    seen = {}

    def keep(name):
        def hook(module, args, out):
            seen[name] = (args, out)

        return hook

    def flip_first(module, args, out):
        # negate image 1's level-5 features so that the cost volume is mostly negative and
        # the leaky ReLU after it matters
        seen["feat5"] = (args, torch.cat((-out[:1], out[1:])))
        return seen["feat5"][1]

    net.moduleExtractor.moduleFiv.register_forward_hook(flip_first)
    net.moduleSix.moduleSix.register_forward_hook(keep("head6"))
    net.moduleFiv.moduleOne.register_forward_hook(keep("one5"))
    net.moduleFiv.moduleTwo.register_forward_hook(keep("two5"))
    net.moduleTwo.moduleSix.register_forward_hook(keep("head2"))
    a, b = torch.rand(2, 1, 3, 128, 128)
    with torch.no_grad():
        out = net(a, b)
        f1, f2 = seen["feat5"][1][:1], seen["feat5"][1][1:]
        feat6, flow6 = seen["head6"][0][0], seen["head6"][1]
        up_flow = net.moduleFiv.moduleUpflow(flow6)
        warped = pwcnet.backward_warp(f2, 0.625 * up_flow)
        cost = pwcnet.correlation(f1, warped)
        assert (cost < 0).float().mean() > 0.05
        cost = torch.where(cost > 0, cost, 0.1 * cost)
        x = seen["one5"][0][0]
        assert x.shape[1] == 81 + 128 + 2 + 2
        close(x[:, :81], cost, atol=1e-5)
        close(x[:, 81:209], f1)
        close(x[:, 209:211], up_flow)
        close(x[:, 211:], net.moduleFiv.moduleUpfeat(feat6))
        x2 = seen["two5"][0][0]
        close(x2[:, :128], seen["one5"][1])
        close(x2[:, 128:], x)
        feat2, flow2 = seen["head2"][0][0], seen["head2"][1]
        close(out, flow2 + net.moduleRefiner.moduleMain(feat2))


def test_official_format_loads_strictly():
    net = pwcnet.PWCNet()
    state = random_port_state()
    net.load_state_dict(state)  # strict: the file's exact keys and shapes
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k])


# 4. load_pwcnet -------------------------------------------------------------------------


@pytest.mark.parametrize("spelling", ["file", "dataparallel", "net"])
def test_load_pwcnet_round_trip(tmp_path, spelling):
    state = random_port_state(seed=4)
    if spelling == "dataparallel":
        saved = {f"module.{k}": v for k, v in state.items()}
    elif spelling == "net":  # the later run.py's rename
        saved = {k.replace("module", "net"): v for k, v in state.items()}
    else:
        saved = state
    path = tmp_path / "network-default.pytorch"
    torch.save(saved, path)
    net = pwcnet.load_pwcnet(path)
    assert not net.training
    assert not any(p.requires_grad for p in net.parameters())
    for k, v in net.state_dict().items():
        assert torch.equal(v, state[k]), k
    ref = pwcnet.PWCNet().eval()
    ref.load_state_dict(state)
    g = torch.Generator().manual_seed(5)
    a, b = torch.rand(2, 1, 3, 64, 64, generator=g)
    with torch.no_grad():
        assert torch.equal(net(a, b), ref(a, b))


def test_load_pwcnet_errors(tmp_path):
    missing = tmp_path / "nope.pth"
    with pytest.raises(ReproError, match="nope.pth"):
        pwcnet.load_pwcnet(missing)
    state = random_port_state()
    state["moduleTwo.moduleBogus.weight"] = state.pop("moduleTwo.moduleOne.0.weight")
    bad = tmp_path / "bad.pth"
    torch.save(state, bad)
    with pytest.raises(ReproError) as info:
        pwcnet.load_pwcnet(bad)
    msg = str(info.value)
    assert str(bad) in msg and "moduleTwo.moduleOne.0.weight" in msg and "\n" not in msg
    extra = random_port_state()
    extra["moduleBogus.bias"] = torch.zeros(2)
    torch.save(extra, bad)
    with pytest.raises(ReproError, match="moduleBogus.bias"):
        pwcnet.load_pwcnet(bad)
    wrong = random_port_state()
    wrong["moduleRefiner.moduleMain.12.bias"] = torch.zeros(3)
    torch.save(wrong, bad)
    with pytest.raises(ReproError, match="moduleRefiner.moduleMain.12.bias"):
        pwcnet.load_pwcnet(bad)


# 5. estimate: resizing and scaling ------------------------------------------------------


class ConstantFlowNet(nn.Module):
    """Returns (fx, fy) everywhere at 1/4 of its input size and records its inputs."""

    def __init__(self, fx, fy):
        super().__init__()
        self.fx, self.fy = fx, fy
        self.seen = []

    def forward(self, first, second):
        self.seen.append((first.clone(), second.clone()))
        b, _, h, w = first.shape
        out = first.new_empty(b, 2, h // 4, w // 4)
        out[:, 0], out[:, 1] = self.fx, self.fy
        return out


def test_estimate_resizes_and_scales():
    stub = ConstantFlowNet(0.3, -0.7)
    first = torch.empty(2, 3, 70, 130)
    first[:, 0], first[:, 1], first[:, 2] = 0.1, 0.5, 0.9  # R, G, B
    second = torch.full((2, 3, 70, 130), 0.25)
    flow = pwcnet.estimate(stub, first, second)
    assert flow.shape == (2, 2, 70, 130)
    # padded to 128 x 192; x scaled by 20 * 130 / 192, y by 20 * 70 / 128
    close(flow[:, 0], torch.full((2, 70, 130), 0.3 * 20 * 130 / 192))
    close(flow[:, 1], torch.full((2, 70, 130), -0.7 * 20 * 70 / 128))
    seen_first, seen_second = stub.seen[0]
    assert seen_first.shape == seen_second.shape == (2, 3, 128, 192)
    close(seen_first[:, :, 5, 7], torch.tensor([[0.9, 0.5, 0.1]] * 2))
    pwcnet.estimate(stub, first, second, bgr=False)
    close(stub.seen[1][0][:, :, 5, 7], torch.tensor([[0.1, 0.5, 0.9]] * 2))


# 6. directions: PWCAligner and pwc_flow -------------------------------------------------


class MeanDifferenceNet(nn.Module):
    """x: mean(second) - mean(first); y: mean(first) (per pair), at 1/4 size."""

    def __init__(self):
        super().__init__()
        self.calls = 0
        self.weight = nn.Parameter(torch.zeros(1))

    def forward(self, first, second):
        self.calls += 1
        b, _, h, w = first.shape
        m1 = first.mean(dim=(1, 2, 3)).view(b, 1, 1)
        m2 = second.mean(dim=(1, 2, 3)).view(b, 1, 1)
        return torch.stack(((m2 - m1).expand(b, h // 4, w // 4), m1.expand(b, h // 4, w // 4)), 1)


def test_pwc_aligner_order_units_and_frozen():
    bsz, n, h, w = 2, 4, 40, 48  # padded to 64 x 64
    level = torch.tensor([[0.10, 0.30, 0.15, 0.50], [0.20, 0.05, 0.40, 0.25]])
    bursts = level.view(bsz, n, 1, 1, 1).expand(bsz, n, 4, h, w).clone()
    stub = MeanDifferenceNet()
    aligner = pwcnet.PWCAligner(stub)
    flow = aligner(bursts)
    assert flow.shape == (bsz, n, 2, h, w)
    assert stub.calls == 1  # all B * (N - 1) pairs in one batch
    assert (flow[:, 0] == 0).all()
    for b in range(bsz):
        for i in range(1, n):
            # first = frame 0, second = frame i (frame_0(x) ~ frame_i(x + flow_i(x)))
            ex = 20 * (level[b, i] - level[b, 0]) * w / 64
            ey = 20 * level[b, 0] * h / 64
            close(flow[b, i, 0], torch.full((h, w), float(ex)))
            close(flow[b, i, 1], torch.full((h, w), float(ey)))
    aligner.train()
    assert aligner.training and not aligner.net.training
    assert not any(p.requires_grad for p in aligner.parameters())


def test_pwc_aligner_uses_r_mean_green_b():
    bursts = torch.zeros(1, 2, 4, 64, 64)
    bursts[0, 1, 0], bursts[0, 1, 1], bursts[0, 1, 2], bursts[0, 1, 3] = 0.2, 0.4, 0.8, 0.6
    flow = pwcnet.PWCAligner(MeanDifferenceNet())(bursts)
    # RGB of frame 1 = (0.2, 0.6, 0.6): mean 1.4 / 3; frame 0 is black
    close(flow[0, 1, 0], torch.full((64, 64), 20 * 1.4 / 3))


def test_pwc_flow_passes_target_first():
    # FlowFn convention: target(x) ~ source(x + flow(x)); estimate gives
    # first(x) ~ second(x + flow(x)), so first must be the target and second the source
    # (the toolkit's wrapper calls net(target, source) for the same reason).
    g = torch.Generator().manual_seed(6)
    source = 2.0 * torch.rand(3, 64, 64, generator=g)
    target = 3.0 * torch.rand(3, 64, 64, generator=g)
    stub = ConstantFlowNet(0.1, 0.2)
    flow = pwcnet.pwc_flow(stub)(source, target)  # default: RGB as the toolkit feeds it
    assert flow.shape == (2, 64, 64)
    first, second = stub.seen[0]
    close(first[0], target / (target.max() + 1e-6))
    close(second[0], source / (source.max() + 1e-6))
    close(flow[0], torch.full((64, 64), 2.0))
    pwcnet.pwc_flow(stub, bgr=True)(source, target)  # the weights' training order
    first, second = stub.seen[-1]
    close(first[0], (target / (target.max() + 1e-6)).flip(0))
    close(second[0], (source / (source.max() + 1e-6)).flip(0))


# 7. smoke --------------------------------------------------------------------------------


def test_random_weights_forward_is_finite():
    torch.manual_seed(0)
    net = pwcnet.PWCNet().eval()
    a, b = torch.rand(2, 1, 3, 70, 90)
    with torch.no_grad():
        flow = pwcnet.estimate(net, a, b)
    assert flow.shape == (1, 2, 70, 90)
    assert torch.isfinite(flow).all()
