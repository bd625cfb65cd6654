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
