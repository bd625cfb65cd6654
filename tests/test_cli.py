import json

import pytest

from hsd.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.startswith("hsd ")


def test_bad_override_is_one_line_error(capsys):
    assert main(["teacher", "--set", "distill.steps=banana"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "hsd: error: distill.steps: must be a whole number, got 'banana' (allowed: in [1, 100000])"
    ]


def test_evaluate_missing_run_is_one_line_error(capsys, tmp_path):
    assert main(["evaluate", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err.strip()
    assert "checkpoint not found" in err and "Traceback" not in err


def test_steps_must_be_integers(capsys):
    with pytest.raises(SystemExit):
        main(["evaluate", "x", "--steps", "1,two"])
    assert "--steps must be integers" in capsys.readouterr().err


def test_json_helper_is_valid(capsys):
    from hsd.cli import _print_json

    _print_json({"a": 1})
    assert json.loads(capsys.readouterr().out) == {"a": 1}


def test_demo_help_names_its_own_out_default(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    out = capsys.readouterr().out
    assert "default demo-out" in out and "runs/<name>-<stage>" not in out


def test_evaluate_table_shows_trained_steps(tmp_path, capsys):
    """A run distilled at T = 2 shows 2 in the "trained at T" column (it showed "-")."""
    tiny = ["model.width=0.25", "data.limit=16", "data.batch_size=16", "threads=1"]
    sets = [
        a
        for item in [*tiny, "teacher.optim.epochs=1", "distill.optim.epochs=1"]
        for a in ("--set", item)
    ]
    assert main(["teacher", "--out", str(tmp_path / "t"), *sets]) == 0
    argv = ["distill", "--teacher", str(tmp_path / "t"), "--out", str(tmp_path / "d"), *sets]
    assert main([*argv, "--set", "distill.steps=2"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(tmp_path / "d"), "--steps", "1,2"]) == 0
    row = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("| distill"))
    assert row.split("|")[2].strip() == "2"
