"""MHSAN's data-parallel training: dropout drawn for the global batch (each rank's rows of one
process's mask), and a run in 2 gloo processes (torchrun through ``repro-core launch``, on
CPU) against the same run in 1.

Tolerance of the 2-process run: weights within ``atol=1e-6, rtol=1e-5`` of the 1-process run
(measured: max |difference| 2.4e-7 after 21 steps), epoch rows to ``rel=1e-5`` (measured:
6.2e-7), the test metrics equal. Not bit-exact: each rank sums its rows' gradients and the
all-reduce adds the two halves, where one process sums the whole batch in one go.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from repro.core.checkpoint import load_checkpoint
from repro.vse.cli import main
from repro.vse.parallel import Dropout, Shard, sharded, variational_mask

BIN = Path(sys.executable).parent


def _ranks(world: int, total: int) -> list[Shard]:
    return [Shard(r, world, total) for r in range(world)]


def _interleave(parts: list[torch.Tensor], dim: int) -> torch.Tensor:
    """The global batch from its ranks' rows (rank r holds rows r, r + world, ...)."""
    total = sum(p.shape[dim] for p in parts)
    shape = list(parts[0].shape)
    shape[dim] = total
    out = parts[0].new_empty(shape)
    for r, part in enumerate(parts):
        index = [slice(None)] * dim + [slice(r, None, len(parts))]
        out[tuple(index)] = part
    return out


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
@pytest.mark.parametrize("dim", [0, 1])
def test_each_ranks_dropout_is_its_rows_of_one_processs_mask(layout, dim):
    """Seeded alike (as seed_period seeds every rank), each of 3 ranks drops its rows of the
    global batch exactly as ``torch.nn.functional.dropout`` drops them in one process, also
    for an input laid out transposed (as the attention's input is)."""
    shape = (7, 5, 6) if dim == 0 else (4, 7, 6)
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0)) + 1
    if layout == "transposed":  # same values, memory order of a transposed tensor
        x = x.transpose(1, 2).contiguous().transpose(1, 2)
    torch.manual_seed(11)
    reference = torch.nn.functional.dropout(x, 0.4, training=True)
    drop = Dropout(0.4, batch_dim=dim).train()
    parts = []
    for shard in _ranks(3, x.shape[dim]):
        torch.manual_seed(11)
        with sharded(drop, shard):
            parts.append(drop(shard.rows(x, dim)))
    assert drop.shard is None  # only inside the block
    assert torch.equal(_interleave(parts, dim), reference)
    assert 0 < int((reference == 0).sum()) < x.numel()  # some dropped, not all
    torch.manual_seed(11)  # without a shard: torch's dropout itself
    assert torch.equal(drop(x), reference)


def test_each_ranks_variational_mask_is_its_rows_of_one_processs_mask():
    x = torch.ones(3, 5, 4)  # (T, B, width): one mask per sequence
    torch.manual_seed(2)
    reference = variational_mask(x, 0.7, None)
    parts = []
    for shard in _ranks(2, 5):
        torch.manual_seed(2)
        parts.append(variational_mask(x[:, shard.rank :: 2], 0.7, shard))
    assert torch.equal(_interleave(parts, 0), reference) and reference.shape == (5, 4)


MODEL = {
    "backbone": "small", "small_channels": 8, "dim": 12, "embed_dim": 10, "attn_hidden": 6,
    "heads": 2, "word_dim": 5, "rnn_layers": 2, "bidirectional": True, "dropout": 0.2,
    "rnn_dropout": 0.2,
}  # fmt: skip
PARAMS = {
    "dataset": "synthetic",
    "model": MODEL,
    # every kind of stage: cached features, then the CNN training on fresh random crops
    "stages": [
        {"epochs": 1, "lr": 1e-2, "train": ["image_proj", "text"], "negatives": "all"},
        {"epochs": 1, "lr": 1e-2, "train": ["image_proj", "image_attention", "text"]},
        {"epochs": 1, "lr": 1e-3, "train": ["image_proj", "image_attention", "text", "cnn"]},
    ],
    "preprocess_train": {"kind": "random_resized_crop", "size": 24},
    "preprocess_eval": {"kind": "resize", "size": 24, "flip": False},
    "train_views": 2,
    "batch_size": 9,  # ranks of 5 and 4 rows; 60 captions: a last batch of 6
    "grad_clip": 8.0,  # clips about half the steps: a gradient of the wrong scale would show
    "workers": 1,
    "threads": 1,
}


@pytest.mark.slow
def test_two_gloo_processes_train_the_run_of_one(tmp_path):
    syn = {"train": 12, "val": 4, "test": 4, "image_size": 32, "seed": 3}
    assert main(["make-synthetic", "--params", json.dumps(syn), "--out", str(tmp_path)]) == 0
    paths = ["--split-file", str(tmp_path / "dataset_synthetic.json"), "--images", str(tmp_path)]
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", "--params", json.dumps(PARAMS), *paths, "--out", str(one)]) == 0
    cmd = [
        str(BIN / "repro-core"), "launch", "--procs=2", "--", str(BIN / "repro-vse"), "train",
        "--params", json.dumps(PARAMS), *paths, "--out", str(two),
    ]  # fmt: skip
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "--nproc-per-node=2" in proc.stderr  # the launcher started torchrun
    weights = [load_checkpoint(run / "model.pt")["model"] for run in (one, two)]
    assert weights[0].keys() == weights[1].keys()
    for key, value in weights[0].items():
        torch.testing.assert_close(weights[1][key], value, atol=1e-6, rtol=1e-5)
    # the checkpoint holds the plain model (no DDP level): it resumes in any number of processes
    assert not any(k.startswith("module.") for k in load_checkpoint(two / "checkpoint.pt")[
        "payload"]["model"])  # fmt: skip
    # epoch rows: sums over both ranks, the rows of one process
    rows = [(run / "metrics.csv").read_text().splitlines() for run in (one, two)]
    header = rows[0][0].split(",")
    assert rows[1][0].split(",") == header and len(rows[0]) == len(rows[1]) == 4
    for a, b in zip(rows[0][1:], rows[1][1:], strict=True):
        for key, x, y in zip(header, a.split(","), b.split(","), strict=True):
            if key != "seconds":
                assert float(y) == pytest.approx(float(x), rel=1e-5, abs=1e-6), key
    results = [json.loads((run / "result.json").read_text()) for run in (one, two)]
    assert results[1]["metrics"] == results[0]["metrics"]
    assert results[1]["best_epoch"] == results[0]["best_epoch"]
    assert results[1]["test_penalty_text"] == pytest.approx(results[0]["test_penalty_text"])
