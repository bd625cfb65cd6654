"""``hsd bench feed`` and ``hsd bench preprocess`` on tiny settings: they run, and their
numbers are consistent with what they measure."""

import json

import numpy as np
import pytest

from hsd.bench import feed as bench_feed
from hsd.bench import preprocess as bench_preprocess


def test_wait_share_counts_the_time_spent_in_next():
    class SlowFeed:
        def set_epoch(self, epoch):
            pass

        def __iter__(self):
            import time

            for _ in range(4):
                time.sleep(0.02)
                yield _Batch()

    class _Batch:
        def to(self, device):
            return self

    result = bench_feed.wait_share(SlowFeed(), epochs=1, step_s=0.02, device="cpu")
    assert result["batches"] == 4
    assert 0.3 < result["share"] < 0.7  # 20 ms waited for every 20 ms step
    assert result["waited_s"] >= 0.08


def test_bench_feed_writes_a_row_per_worker_count(tmp_path):
    out = tmp_path / "feed.json"
    argv = ["--workers", "0,1", "--samples", "32", "--batch-size", "8", "--size", "16"]
    argv += ["--epochs", "1", "--repeats", "1", "--step-ms", "1", "--out", str(out)]
    assert bench_feed.main(argv) == 0
    record = json.loads(out.read_text())
    assert [r["num_workers"] for r in record["rows"]] == [0, 1]
    for row in record["rows"]:
        assert 0.0 < row["wait_share"] < 1.0
        assert row["runs"][0]["batches"] == 4


def test_generated_recordings_are_cifar10dvs_files_and_deterministic(tmp_path):
    from hsd.data import get_dataset

    n = bench_preprocess.generate(tmp_path / "a", 10, seed=3, workers=1)
    bench_preprocess.generate(tmp_path / "b", 10, seed=3, workers=2)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").glob("*/*.aedat"))
    assert len(files) == 10
    for rel in files:
        assert (tmp_path / "a" / rel).read_bytes() == (tmp_path / "b" / rel).read_bytes()
    dataset = get_dataset("cifar10dvs", tmp_path / "a")
    assert len(dataset) == 10 and sorted(set(dataset.labels.tolist())) == list(range(10))
    events = dataset.load_events(0)
    assert events.sensor_size == (128, 128)
    assert n / 10 > 50_000  # CIFAR10-DVS-like density


@pytest.mark.slow
def test_bench_preprocess_reports_identical_builds_and_deletes_its_data(tmp_path):
    out = tmp_path / "pp.json"
    data = tmp_path / "data"
    argv = ["--count", "10", "--workers", "1,2", "--repeats", "1", "--data", str(data)]
    assert bench_preprocess.main([*argv, "--out", str(out)]) == 0
    record = json.loads(out.read_text())
    assert [r["workers"] for r in record["rows"]] == [1, 2]
    assert all(r["same_bytes"] for r in record["rows"])
    assert record["rows"][0]["disk_mib"] > 0 and record["read_ms_per_file"] > 0
    assert record["rows"][1]["peak_worker_rss_mib"] > 0
    assert record["spikingjelly"]["note"] and record["tonic"]["note"].startswith("skipped")
    assert not data.exists()
    assert np.isfinite(record["rows"][1]["speedup"])


def test_bench_preprocess_refuses_a_count_the_disk_cannot_hold(tmp_path, capsys):
    argv = ["--count", str(10**9), "--data", str(tmp_path / "d"), "--out", str(tmp_path / "o")]
    assert bench_preprocess.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("hsd: error: --count 1000000000 needs about") and "GB free" in err
    assert not (tmp_path / "d").exists() and not (tmp_path / "o").exists()
