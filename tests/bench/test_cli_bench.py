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
        "early",
    ]


def test_early_runs_only_when_named(monkeypatch, tmp_path):
    import hsd.bench
    import hsd.bench.early

    ran = []
    for name in BENCHMARKS:
        module = __import__(f"hsd.bench.{name}", fromlist=["main"])
        monkeypatch.setattr(module, "main", lambda argv, name=name: ran.append((name, argv)))
    hsd.bench.run_benchmarks(out=tmp_path, overrides=["data.root=D"])
    assert [n for n, _ in ran] == [n for n in BENCHMARKS if n != "early"]
    ran.clear()
    assert main(["bench", "early", "--quick", "--out", str(tmp_path), "--set", "data.root=D"]) == 0
    assert ran == [("early", ["--out", str(tmp_path / "early"), "--quick", "--set=data.root=D"])]


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
