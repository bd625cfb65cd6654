import json

import pytest

from hsd.cli import main
from hsd.data.info import format_summary, show_sample, summarize


def test_summarize_counts_splits_classes_and_events(nmnist_root):
    root, _ = nmnist_root
    summary = summarize("nmnist", root)
    assert summary["dataset"] == "nmnist" and summary["emulated"] is False
    assert summary["sensor_size"] == [34, 34] and summary["num_samples"] == 30
    assert summary["samples_per_split"] == {"train": 20, "test": 10}
    assert summary["samples_per_class"]["7"] == {"train": 2, "test": 1}
    ev = summary["events_per_sample"]
    assert (ev["min"], ev["median"], ev["max"]) == (30, 34.5, 39)  # 30 + digit events each
    assert ev["measured_on"] == 30 and ev["sampled"] is False
    json.dumps(summary)
    text = format_summary(summary)
    assert "samples: 30 (train 20, test 10; official split)" in text
    assert "min 30, median 34.5, max 39 (on all 30 samples)" in text


def test_summarize_samples_at_most_max_measured(nmnist_root):
    root, _ = nmnist_root
    ev = summarize("nmnist", root, max_measured=5)["events_per_sample"]
    assert ev["measured_on"] == 5 and ev["sampled"] is True and ev["seed"] == 0


def test_show_sample_writes_a_png(nmnist_root, tmp_path):
    root, _ = nmnist_root
    out = show_sample("nmnist", root, 3, tmp_path / "pics" / "s.png", n_frames=4)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cli_data_info_and_show(nmnist_root, tmp_path, capsys):
    root, _ = nmnist_root
    assert main(["data", "info", "nmnist", "--root", str(root), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["num_samples"] == 30
    assert main(["data", "info", "nmnist", "--root", str(root)]) == 0
    assert "34x34" in capsys.readouterr().out
    out = tmp_path / "show.png"
    argv = ["data", "show", "nmnist", "--root", str(root), "--index", "0", "--out", str(out)]
    assert main(argv) == 0
    assert out.is_file() and f"wrote {out}" in capsys.readouterr().out


@pytest.mark.parametrize("command", ["info", "show"])
def test_cli_missing_root_is_a_clean_error(tmp_path, capsys, command):
    argv = ["data", command, "nmnist", "--root", str(tmp_path / "missing")]
    if command == "show":
        argv += ["--out", str(tmp_path / "x.png")]
    assert main(argv) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]  # the expected layout is printed above the error line
    assert last.startswith("hsd: error: nmnist: ") and "missing: folder not found" in last
    assert "expected layout" in err
    assert "Traceback" not in err


def test_cli_index_out_of_range(nmnist_root, tmp_path, capsys):
    root, _ = nmnist_root
    argv = ["data", "show", "nmnist", "--root", str(root), "--index", "30", "--out", "x.png"]
    assert main([*argv, "--split", "all"]) == 2
    assert "index 30 is outside [0, 30) (split all)" in capsys.readouterr().err
    assert main(argv) == 2  # default: the 20 training samples
    assert "index 30 is outside [0, 20) (split train)" in capsys.readouterr().err


def test_show_indexes_train_first_and_split_chooses(nmnist_root):
    from hsd.data import get_dataset
    from hsd.data.info import sample_index

    root, _ = nmnist_root
    ds = get_dataset("nmnist", root)
    first, split = sample_index(ds, 0)
    assert split == "train" and ds.samples[first].key.startswith("Train/")
    keys = [ds.samples[sample_index(ds, i, "test")[0]].key for i in range(10)]
    assert all(k.startswith("Test/") for k in keys) and len(set(keys)) == 10
    assert sample_index(ds, 29, "all")[1] == "all"


def test_show_without_official_split_refuses_train(tmp_path):
    from hsd.data import get_dataset
    from hsd.data.info import sample_index
    from hsd.errors import DatasetError

    ds = get_dataset("digits-dvs", None)
    assert sample_index(ds, 5)[0] == 5  # default "all": the dataset's order
    with pytest.raises(DatasetError, match="digits-dvs: has no official train split"):
        sample_index(ds, 0, "train")


def test_show_draws_a_polarity_legend(nmnist_root, tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    texts = []
    original = Figure.text

    def record(self, x, y, s, *args, **kwargs):
        texts.append(s)
        return original(self, x, y, s, *args, **kwargs)

    monkeypatch.setattr(Figure, "text", record)
    root, _ = nmnist_root
    show_sample("nmnist", root, 0, tmp_path / "s.png", n_frames=2, split="test")
    assert any("red: ON" in t and "blue: OFF" in t for t in texts)


def test_show_options_have_help(capsys):
    with pytest.raises(SystemExit):
        main(["data", "show", "--help"])
    out = capsys.readouterr().out
    for option in ("--root", "--split", "--index", "--frames", "--out"):
        line = next(ln for ln in out.splitlines() if ln.strip().startswith(option))
        following = out.split(line, 1)[1].splitlines()[0] if line.strip() == option else line
        assert len((line + following).split()) > 2, option
