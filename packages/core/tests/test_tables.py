import csv
import io

from repro.core.tables import to_csv, to_markdown, write_table

ROWS = [
    {"method": "kd", "ours": 73.3333, "paper": None},
    {"method": "a|b", "ours": float("nan"), "paper": 76.32},
]


def test_markdown_matches_hand_written_table():
    expected = (
        "| method | ours | paper |\n|---|---:|---:|\n| kd | 73.33 | — |\n| a\\|b | — | 76.32 |\n"
    )
    assert to_markdown(ROWS) == expected


def test_csv_round_trips_and_leaves_missing_cells_empty():
    back = list(csv.DictReader(io.StringIO(to_csv(ROWS))))
    assert back[0] == {"method": "kd", "ours": "73.333300", "paper": ""}
    assert back[1]["ours"] == "" and float(back[1]["paper"]) == 76.32


def test_write_table_writes_title_and_notes(tmp_path):
    write_table(ROWS, tmp_path / "s.csv", tmp_path / "s.md", title="T", notes=["source: x"])
    md = (tmp_path / "s.md").read_text()
    assert md.startswith("# T\n") and md.rstrip().endswith("- source: x")
    assert (tmp_path / "s.csv").read_text().splitlines()[0] == "method,ours,paper"
