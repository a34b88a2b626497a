"""The closing line of a run names its scorecards and the report command for its config."""

from __future__ import annotations

from repro.core.messages import finished


def test_the_closing_line_names_the_scorecards_and_the_report_command(tmp_path):
    for paper in ("mhsan", "cskd"):
        (tmp_path / "quick" / paper).mkdir(parents=True)
        (tmp_path / "quick" / paper / "summary.md").write_text("x")
    (tmp_path / "quick" / "kd").mkdir()  # the run pool: no scorecard
    line = finished(tmp_path / "quick", ["config/quick.yaml"])
    assert line == (
        f"repro: finished. Scorecards: {tmp_path}/quick/{{cskd,mhsan}}/summary.md; "
        "the HTML report: uv run snakemake --report report.html"
    )
    paper = finished(tmp_path / "quick", ["config/paper.yaml", "my overlay.yaml"])
    assert paper.endswith("--report report.html --configfile config/paper.yaml 'my overlay.yaml'")
    assert "none yet" in finished(tmp_path / "other", [])


def test_status_lists_recent_logs_with_their_last_progress_line(tmp_path):
    import os

    from repro.core.messages import status

    logs = tmp_path / "logs" / "quick"
    logs.mkdir(parents=True)
    running = logs / "kd" / "train.log"
    running.parent.mkdir()
    running.write_text("start\nepoch 1/240 loss 2.1\n\repoch 2/240:  40%|####  | 4/10\r")
    old = logs / "old.log"
    old.write_text("done\n")
    os.utime(running, (1000.0, 1000.0 + 600))
    os.utime(old, (1000.0, 1000.0))
    lines = status(tmp_path / "logs", since_minutes=5, now=1000.0 + 660)
    assert lines == [f"  1.0 min ago  {running}  epoch 2/240:  40%|####  | 4/10"]
