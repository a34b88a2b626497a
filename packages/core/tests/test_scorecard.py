import csv

from repro.core.scorecard import Metric, Table, score_rows, to_markdown, write_scorecard

TABLE = Table(
    title="CIFAR-100",
    keys=("teacher", "student", "variant"),
    metrics=(Metric("top1", 2, "top-1"),),
    cells=[
        {"teacher": "r32x4", "student": "r8x4", "variant": "kd"},
        {"teacher": "r32x4", "student": "r8x4", "variant": "dkd"},
        {"teacher": "r32x4", "student": "r8x4", "variant": "heda", "note": "ours only"},
    ],
)
OURS = [
    {"teacher": "r32x4", "student": "r8x4", "variant": "kd", "top1": 73.0, "test_n": 10000},
    {"teacher": "r32x4", "student": "r8x4", "variant": "kd", "top1": 74.0, "test_n": 10000},
    {"teacher": "r32x4", "student": "r8x4", "variant": "kd", "top1": 75.5, "test_n": 10000},
    {"teacher": "other", "student": "r8x4", "variant": "kd", "top1": 10.0, "test_n": 10000},
]
REPORTED = [
    {"teacher": "r32x4", "student": "r8x4", "variant": "kd", "top1": 73.33, "source": "lb"},
    {"teacher": "r32x4", "student": "r8x4", "variant": "dkd", "top1": 76.32, "source": "lb"},
    {"teacher": "wrn", "student": "wrn16", "variant": "kd", "top1": 74.92, "source": "x"},
]


def test_cells_get_mean_sample_std_n_and_difference():
    rows = score_rows(TABLE, OURS, REPORTED)
    kd, dkd, heda = rows
    # hand-worked: mean(73, 74, 75.5) = 74.1666..., sample std = sqrt(((-7/6)^2 + (-1/6)^2
    # + (4/3)^2) / 2) = sqrt(1.58333...) ; difference 74.1666... - 73.33
    assert abs(kd["top1_ours"] - 74.16666666666667) < 1e-12
    assert abs(kd["top1_std"] - 1.2583057392117916) < 1e-12
    assert abs(kd["top1_diff"] - (74.16666666666667 - 73.33)) < 1e-12
    assert kd["n"] == 3 and kd["test_n"] == 10000 and kd["source"] == "lb"
    # a cell we did not run stays empty, with its reported number and source
    assert dkd["top1_ours"] is None and dkd["n"] is None and dkd["top1_reported"] == 76.32
    # a cell nobody reported: ours only, no reported number, no invented source
    assert heda["top1_reported"] is None and heda["source"] is None and heda["note"] == "ours only"
    assert len(rows) == 3  # the unrelated run and the reported wrn row are not cells


def test_single_run_has_no_std_and_reported_rows_can_be_listed():
    table = Table("t", ("method",), (Metric("psnr", 2), Metric("ssim", 3)), [{"method": "a"}], True)
    rows = score_rows(table, [{"method": "a", "psnr": 30.0, "ssim": 0.9}], [
        {"method": "a", "psnr": 31.0, "source": "s1"},
        {"method": "b", "psnr": 40.0, "ssim": 0.95, "source": "s2"},
    ])  # fmt: skip
    assert rows[0]["psnr_std"] is None and rows[0]["psnr_diff"] == -1.0
    assert rows[0]["ssim_reported"] is None and rows[0]["ssim_diff"] is None
    assert rows[1] == {
        "method": "b",
        "psnr_reported": 40.0, "psnr_ours": None, "psnr_std": None, "psnr_diff": None,
        "ssim_reported": 0.95, "ssim_ours": None, "ssim_std": None, "ssim_diff": None,
        "n": None, "test_n": None, "source": "s2", "note": None, "planned": False,
    }  # fmt: skip
    assert rows[0]["planned"] is True  # a declared cell; the listed reported row is not
    declared = Table("t", ("method",), (Metric("psnr", 2),), [{"method": "b", "planned": False}])
    assert score_rows(declared, [], [])[0]["planned"] is False  # declared as published only


def test_markdown_prints_the_papers_precision_and_dashes_for_empty_cells():
    table = Table(
        "t", ("method",), (Metric("ssim", 3, "SSIM"),), [{"method": "a"}, {"method": "b"}]
    )
    rows = score_rows(
        table,
        [{"method": "a", "ssim": 0.94449}, {"method": "a", "ssim": 0.94551}],
        [{"method": "a", "ssim": 0.945, "source": "README"}],
    )
    md = to_markdown(table, rows).splitlines()
    assert md[0] == ("| method | SSIM reported | SSIM ours | ± std | difference | n | source |")
    assert md[2] == "| a | 0.945 | 0.945 | 0.001 | +0.000 | 2 | README |"
    assert md[3] == "| b | — | — | — | — | — | — |"


def test_write_scorecard_writes_one_csv_and_a_section_per_table(tmp_path):
    other = Table("Other", TABLE.keys, TABLE.metrics, [REPORTED[2]])
    write_scorecard(
        [TABLE, other], OURS, REPORTED, tmp_path / "s.csv", tmp_path / "s.md", "Energy KD", ["n1"]
    )
    rows = list(csv.DictReader((tmp_path / "s.csv").open()))
    assert [r["table"] for r in rows] == ["CIFAR-100"] * 3 + ["Other"]
    assert rows[3]["top1_ours"] == "" and rows[3]["top1_reported"] == "74.920000"
    md = (tmp_path / "s.md").read_text()
    assert md.startswith("# Energy KD\n") and "## CIFAR-100\n" in md and "## Other\n" in md
    assert md.rstrip().endswith("- n1")


def test_reported_rows_inherit_the_file_source_and_a_row_without_one_is_refused(tmp_path):
    import pytest

    from repro.core import ReproError
    from repro.core.scorecard import load_reported

    good = tmp_path / "good.yaml"
    good.write_text("source: leaderboard\nrows:\n- {m: a, x: 1}\n- {m: b, x: 2, source: paper}\n")
    assert [r["source"] for r in load_reported(good)] == ["leaderboard", "paper"]
    bad = tmp_path / "bad.yaml"
    bad.write_text("rows:\n- {m: a, x: 1, source: s}\n- {m: b, x: 2}\n")
    with pytest.raises(ReproError, match=r"bad\.yaml: rows\[1\] has no source"):
        load_reported(bad)


def test_reported_rows_match_on_a_subset_of_keys_and_extras_are_ours_only():
    table = Table(
        "Burst SR",
        keys=("method", "track", "model"),
        metrics=(Metric("psnr", 2),),
        cells=[
            {"method": "DBSR", "track": "synthetic", "model": "dbsr_flownet"},
            {"method": "DBSR", "track": "synthetic", "model": "dbsr_pwcnet"},
        ],
        include_reported=True,
        match=("method", "track"),
        extras=(Metric("params_m", 2),),
    )
    ours = [
        {"method": "DBSR", "track": "synthetic", "model": "dbsr_flownet", "psnr": 38.0,
         "params_m": 13.0},
        {"method": "DBSR", "track": "synthetic", "model": "dbsr_pwcnet", "psnr": 39.5},
    ]  # fmt: skip
    reported = [
        {"method": "DBSR", "track": "synthetic", "psnr": 39.09, "source": "README"},
        {"method": "MFIR", "track": "synthetic", "psnr": 41.56, "source": "deep-rep"},
    ]
    rows = score_rows(table, ours, reported)
    assert [(r["model"], r["psnr_reported"], r["psnr_diff"]) for r in rows[:2]] == [
        ("dbsr_flownet", 39.09, 38.0 - 39.09),
        ("dbsr_pwcnet", 39.09, 39.5 - 39.09),
    ]
    assert rows[0]["params_m"] == 13.0 and rows[1]["params_m"] is None
    assert rows[2]["method"] == "MFIR" and rows[2]["model"] is None and len(rows) == 3


def test_qualitative_claims_say_whether_ours_agree():
    table = Table(
        "claims", ("claim",), (Metric("holds", text=True),), [{"claim": c} for c in "abcd"]
    )
    ours = [
        {"claim": "a", "holds": "yes"},
        {"claim": "b", "holds": "no"},
        {"claim": "c", "holds": "yes"},
        {"claim": "c", "holds": "no"},
    ]
    reported = [{"claim": k, "holds": "yes", "source": "abstract"} for k in "abcd"]
    got = {
        r["claim"]: (r["holds_ours"], r["holds_diff"]) for r in score_rows(table, ours, reported)
    }
    assert got == {
        "a": ("yes", "agrees"),
        "b": ("no", "differs"),
        "c": ("mixed", "differs"),
        "d": (None, None),
    }
    md = to_markdown(table, score_rows(table, ours, reported))
    assert "| a | yes | yes | agrees | 1 | abstract |" in md


def test_a_cell_on_other_data_shows_both_numbers_but_no_difference():
    cells = [{**TABLE.cells[0], "comparable": False, "note": "not comparable: other data"}]
    table = Table(TABLE.title, TABLE.keys, TABLE.metrics, cells)
    (row,) = score_rows(table, OURS, REPORTED)
    assert row["top1_reported"] == 73.33 and abs(row["top1_ours"] - 74.16666666666667) < 1e-12
    assert row["top1_diff"] is None and row["note"] == "not comparable: other data"
    assert "difference" not in to_markdown(table, [row])
