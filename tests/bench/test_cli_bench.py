"""``hsd bench``: its parser and its dispatch, on the cheapest benchmark."""

import json

from hsd.bench import BENCHMARKS
from hsd.cli import build_parser, main


def test_bench_parser_defaults_and_names():
    args = build_parser().parse_args(["bench"])
    assert (args.names, args.quick, args.out, args.set) == ([], False, "bench-out", [])
    args = build_parser().parse_args(
        ["bench", "accuracy", "speed", "--quick", "--out", "o", "--set", "threads=1"]
    )
    assert (args.names, args.quick, args.out, args.set) == (
        ["accuracy", "speed"],
        True,
        "o",
        ["threads=1"],
    )
    assert args.func.__name__ == "_cmd_bench"
    assert list(BENCHMARKS) == [
        "accuracy",
        "speed",
        "memory",
        "energy",
        "frames",
        "loading",
        "feed",
        "preprocess",
        "decoding",
    ]


def test_unknown_benchmark_is_one_line_error(capsys, tmp_path):
    assert main(["bench", "accuracy", "nope", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("hsd: error: unknown benchmark(s) nope") and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_bench_frames_quick_writes_its_json(capsys, tmp_path):
    assert main(["bench", "frames", "--quick", "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "frames.json").read_text())
    assert record["n_events"] == 200_000
    assert "wrote" in capsys.readouterr().out
