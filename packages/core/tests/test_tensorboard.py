"""TensorBoard events of a run equal its metrics.csv (read back with TensorBoard's reader)."""

from __future__ import annotations

import csv

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from repro.core.tensorboard import export
from repro.core.training import TrainLoop


def scalars(run_dir):
    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def metrics(run_dir):
    with open(run_dir / "metrics.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_the_events_equal_metrics_csv_also_after_a_resume(tmp_path):
    rows = [{"epoch": e, "loss": 1.0 / e, "test_acc": 0.1 * e, "stage": "a"} for e in (1, 2, 3)]
    loop = TrainLoop(tmp_path, total=3, tensorboard=True)
    for epoch in (1, 2):
        loop.record(rows[epoch - 1])
        loop.save(epoch, {})
    # a new process resumes after epoch 2 and records epoch 3
    again = TrainLoop(tmp_path, total=3, tensorboard=True)
    assert again.resume(lambda payload: None) == 3
    again.record(rows[2])
    events = scalars(tmp_path)
    table = metrics(tmp_path)
    assert set(events) == {"loss", "test_acc"}  # numeric columns; the step column is the step
    for tag in events:
        expected = [(int(r["epoch"]), float(r[tag])) for r in table]
        assert [s for s, _ in events[tag]] == [s for s, _ in expected]
        assert [v for _, v in events[tag]] == pytest.approx(
            [v for _, v in expected], rel=1e-5
        )  # csv: 6 digits
    assert len(list((tmp_path / "tensorboard").glob("events.out.tfevents.*"))) == 1


def test_off_by_default_and_exported_later(tmp_path, monkeypatch):
    monkeypatch.delenv("REPRO_TENSORBOARD", raising=False)
    run = tmp_path / "results" / "vanilla" / "run"
    loop = TrainLoop(run, total=2, unit="iteration")
    for it in (100, 200):
        loop.record({"iteration": it, "loss": it / 1000})
    assert not (run / "tensorboard").exists()
    assert len(export(tmp_path / "results")) == 1
    assert scalars(run) == {"loss": [(100, pytest.approx(0.1)), (200, pytest.approx(0.2))]}
