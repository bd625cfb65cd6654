"""``hsd bench decoding`` on tiny files: a row per (file, decoder), hsd's rows measured and
equal in event count, peers that do not import reported as skipped, never fatal."""

import json

from hsd.bench import decoding


def test_decoding_bench_rows_and_table(tmp_path, capsys):
    out = tmp_path / "decoding.json"
    assert decoding.main(["--events", "3000", "--repeats", "1", "--out", str(out)]) == 0
    rows = json.loads(out.read_text())["rows"]
    files = {r["file"] for r in rows}
    assert len(files) == 7  # one synthetic file per format hsd writes
    for name in files:
        ours = [r for r in rows if r["file"] == name and r["decoder"] in ("hsd", "hsd-chunked")]
        assert len(ours) == 2 and all(r["events"] == 3000 and r["median_s"] > 0 for r in ours)
    measured = [r for r in rows if "events" in r]
    assert all(r["peak_mib"] >= 0 for r in measured)
    table = capsys.readouterr().out
    assert "| file | format | decoder |" in table
    assert table.count("| hsd |") == 7
    assert all(("skipped" in r) != ("events" in r) for r in rows)
