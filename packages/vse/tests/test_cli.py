"""The CLI end to end on a tiny synthetic set: make-synthetic, train, evaluate."""

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
    {"epochs": 1, "lr": 1e-3, "train": ["image_proj", "image_attention", "text"]},
]


def test_make_synthetic_train_evaluate(tmp_path, capsys):
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
    assert result["n_test_images"] == 3 and len(result["history"]) == 2
    full = result["metrics"]["full"]
    assert set(full) >= {"i2t_r1", "t2i_r10", "i2t_medr", "rsum"}
    argv = [
        "evaluate",
        "--params",
        "{}",
        "--checkpoint",
        str(tmp_path / "run" / "model.pt"),
        *common,
        "--out",
        str(tmp_path / "eval.json"),
    ]
    assert main(argv) == 0
    again = json.loads((tmp_path / "eval.json").read_text())
    assert again["metrics"]["full"] == pytest.approx(full)
    assert again["penalty_text"] == pytest.approx(result["test_penalty_text"])

    bad = {**params, "stages": [{"epochs": 1, "lr": 1e-3, "train": ["cnn", "words"]}]}
    assert main(["train", "--params", json.dumps(bad), *common, "--out", str(tmp_path / "x")]) == 2
    assert "error: stages[0].train: unknown part 'words'" in capsys.readouterr().err
