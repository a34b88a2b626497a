"""Training steps per second with the frozen-backbone feature cache against without, at the
paper's widths (ResNet-152 with random weights, d = d' = 2400, d_a = 350, r = 10, 620-d words,
4-layer SRU), in one process.

The step is MHSAN's stage 2 (the image projection and the whole text side train; the CNN is
frozen): without the cache every step runs ResNet-152 forward on the batch's 256x256 crops;
with it the step reads their feature maps (8x8x2048 each) from the in-memory cache, filled
beforehand (in a run: during the first pass over each view). Both take the same images,
captions and initial weights; image decoding is left out of both. Also prints the loss of the
first step of each, which must agree.

Usage::

    uv run python packages/vse/benchmarks/bench_cache.py --batch 8 --steps 3 [--device cuda]
"""

from __future__ import annotations

import argparse
import copy
import time

import torch

from repro.core.params import parse
from repro.vse.cache import FeatureCache, cache_key
from repro.vse.models import ModelConfig, seeded_model
from repro.vse.train import PAPER_STAGES, Batch, LossConfig, adam, apply_stage, train_step

PAPER = dict(
    backbone="resnet152",
    dim=2400,
    embed_dim=2400,
    attn_hidden=350,
    heads=10,
    word_dim=620,
    rnn="sru",
    rnn_layers=4,
)


def sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=3, help="timed steps (after one warm-up)")
    parser.add_argument("--vocab", type=int, default=10000)
    parser.add_argument("--words", type=int, default=12, help="caption length")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    dev = args.device
    gen = torch.Generator().manual_seed(0)
    model = seeded_model(parse(ModelConfig, PAPER, "model"), args.vocab, 0).to(dev)
    stage = PAPER_STAGES[1]
    n = args.batch * (args.steps + 1)
    images = torch.randn(n, 3, 256, 256, generator=gen).to(dev)
    tokens = torch.randint(2, args.vocab, (n, args.words), generator=gen).to(dev)
    lengths = torch.full((n,), args.words, device=dev)
    print(
        f"paper widths, stage 2 ({'+'.join(stage.train)}), batch {args.batch}, device {dev}, "
        f"{args.threads} thread(s)"
    )

    models = {"cache": model, "no cache": copy.deepcopy(model)}
    cache = FeatureCache(cache_key(model.backbone, {"bench": 256}), n, 1, device=dev)
    start = time.perf_counter()
    model.backbone.eval()
    for a in range(0, n, args.batch):
        idx = torch.arange(a, a + args.batch)
        cache.features(idx, torch.zeros_like(idx), lambda i, v: model.backbone(images[i]))
    sync(dev)
    fill = time.perf_counter() - start
    print(f"filling the cache: {fill / n * 1000:.0f} ms per image (once per image and view)")

    rates, first = {}, {}
    for name, m in models.items():
        assert apply_stage(m, stage)
        opt = adam(m, stage.lr)
        times = []
        for step in range(args.steps + 1):
            idx = torch.arange(step * args.batch, (step + 1) * args.batch)
            torch.manual_seed(step)  # the same dropout masks in both
            start = time.perf_counter()
            if name == "cache":
                feats = cache.features(idx, torch.zeros_like(idx), None)
                batch = Batch(tokens[idx], lengths[idx], features=feats)
            else:
                batch = Batch(tokens[idx], lengths[idx], images=images[idx.to(dev)])
            terms = train_step(m, opt, batch, LossConfig())
            sync(dev)
            times.append(time.perf_counter() - start)
            if step == 0:
                first[name] = terms["loss"]
        rates[name] = args.steps / sum(times[1:])
        print(f"{name:9s}: {rates[name]:.3f} steps/s ({1 / rates[name]:.2f} s per step)")
    print(
        f"ratio cache / no cache: {rates['cache'] / rates['no cache']:.2f}x; first-step loss "
        f"{first['cache']:.5f} vs {first['no cache']:.5f}"
    )


if __name__ == "__main__":
    main()
