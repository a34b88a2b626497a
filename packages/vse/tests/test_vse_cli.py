"""The CLI end to end on a tiny synthetic set: make-synthetic, train (its settings in the
params: device, threads, the disk cache), resume."""

from __future__ import annotations

import json

import pytest

from repro.vse.cli import main

MODEL = {
    "backbone": "small",
    "small_channels": 8,
    "dim": 12,
    "embed_dim": 10,
    "attn_hidden": 6,
    "heads": 2,
    "word_dim": 5,
    "rnn_layers": 1,
}
STAGES = [
    {"epochs": 1, "lr": 1e-3, "train": ["image_proj", "text"], "negatives": "all"},
    {"epochs": 2, "lr": 1e-3, "train": ["image_proj", "image_attention", "text"]},
]


def test_make_synthetic_and_train(tmp_path, capsys):
    syn = {"train": 6, "val": 2, "test": 3, "image_size": 32, "seed": 1}
    assert main(["make-synthetic", "--params", json.dumps(syn), "--out", str(tmp_path / "d")]) == 0
    split = str(tmp_path / "d" / "dataset_synthetic.json")
    params = {
        "dataset": "synthetic",
        "model": MODEL,
        "stages": STAGES,
        "batch_size": 8,
        "preprocess_train": {"kind": "none"},
        "preprocess_eval": {"kind": "none"},
        "workers": 1,
    }
    common = ["--split-file", split, "--images", str(tmp_path / "d")]
    assert (
        main(["train", "--params", json.dumps(params), *common, "--out", str(tmp_path / "run")])
        == 0
    )
    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert result["test_n"] == {"images": 3, "captions": 15}
    rows = (tmp_path / "run" / "metrics.csv").read_text().splitlines()
    assert rows[0].startswith("epoch,stage,lr,") and len(rows) == 4  # header + 3 epochs
    assert {p.name for p in (tmp_path / "run").iterdir()} == {
        "checkpoint.pt",
        "metrics.csv",
        "model.pt",
        "result.json",
    }
    full = result["metrics"]["full"]
    assert set(full) >= {"i2t_r1", "t2i_r10", "i2t_medr", "rsum"}
    # the settings (device, threads, the disk cache) do not change the run
    settings = {"device": "cpu", "threads": 1, "cache": True}
    cache = tmp_path / "cache"
    argv = ["train", "--params", json.dumps({**params, **settings}), *common, "--cache",
            str(cache), "--out", str(tmp_path / "disk")]  # fmt: skip
    assert main(argv) == 0
    again = json.loads((tmp_path / "disk" / "result.json").read_text())
    assert again["metrics"] == result["metrics"]
    assert again["test_penalty_text"] == result["test_penalty_text"]
    assert again["params"] == {**params, **settings}
    assert len(list(cache.glob("*/features.npy"))) == 3  # train, val and test
    argv[2] = json.dumps({**params, "cache": True})
    assert main(argv[:-4] + ["--out", str(tmp_path / "y")]) == 2
    assert "error: params.cache: true needs a cache folder (--cache DIR)" in capsys.readouterr().err

    bad = {**params, "stages": [{"epochs": 1, "lr": 1e-3, "train": ["cnn", "words"]}]}
    assert main(["train", "--params", json.dumps(bad), *common, "--out", str(tmp_path / "x")]) == 2
    assert "error: params.stages[0].train: unknown part 'words'" in capsys.readouterr().err


def test_an_interrupted_run_resumes_to_the_same_result(tmp_path, monkeypatch):
    """Stopped after epoch 1 (the end of stage 1) or epoch 2 (inside stage 2), then rerun."""
    syn = {"train": 6, "val": 2, "test": 3, "image_size": 32, "seed": 2}
    main(["make-synthetic", "--params", json.dumps(syn), "--out", str(tmp_path / "d")])
    params = {
        "dataset": "synthetic",
        "model": {**MODEL, "dropout": 0.3},
        "stages": STAGES,
        "batch_size": 8,
        "preprocess_train": {"kind": "none"},
        "preprocess_eval": {"kind": "none"},
        "workers": 1,
    }
    common = [
        "--params",
        json.dumps(params),
        "--split-file",
        str(tmp_path / "d" / "dataset_synthetic.json"),
        "--images",
        str(tmp_path / "d"),
    ]
    assert main(["train", *common, "--out", str(tmp_path / "whole")]) == 0

    import repro.core.training as training
    from repro.vse.train import Trainer

    save, epoch = training.TrainLoop.save, Trainer.train_epoch

    def losses(run: str) -> list[list[str]]:  # every column but the timing
        rows = [r.split(",") for r in (tmp_path / run / "metrics.csv").read_text().splitlines()]
        keep = [i for i, c in enumerate(rows[0]) if c != "seconds"]
        return [[r[i] for i in keep] for r in rows]

    whole = json.loads((tmp_path / "whole" / "result.json").read_text())
    for stop_after in (1, 2):

        def save_then_stop(self, period, payload, stop_after=stop_after):
            save(self, period, payload)
            if period == stop_after:
                raise KeyboardInterrupt  # killed right after this epoch's checkpoint

        out = str(tmp_path / f"cut{stop_after}")
        monkeypatch.setattr(training.TrainLoop, "save", save_then_stop)
        with pytest.raises(KeyboardInterrupt):
            main(["train", *common, "--out", out])
        monkeypatch.setattr(training.TrainLoop, "save", save)
        # resumed with other settings (device, threads: not in the checkpoint's fingerprint)
        trained: list[int] = []

        def counted(self, e, trained=trained):
            trained.append(e)
            return epoch(self, e)

        monkeypatch.setattr(Trainer, "train_epoch", counted)
        settings = {**params, "device": "cpu", "threads": 1}
        assert main(["train", "--params", json.dumps(settings), *common[2:], "--out", out]) == 0
        assert trained == list(range(stop_after + 1, 4))
        cut = json.loads((tmp_path / f"cut{stop_after}" / "result.json").read_text())
        assert cut["metrics"] == whole["metrics"] and cut["best_epoch"] == whole["best_epoch"]
        assert len(losses(f"cut{stop_after}")) == 4
        assert losses(f"cut{stop_after}") == losses("whole")
