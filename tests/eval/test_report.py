from hsd.eval.report import accuracy_table, plot_accuracy_vs_steps

METHODS = {
    "hsd": {
        "label": "HSD",
        "trained_steps": 2,
        "accuracy": {"1": 0.9, "2": 0.955, "10": 0.8},
        "latency_ms": {"1": 30.0, "2": 61.4, "10": 300.0},
    },
    "converted": {"accuracy": {"1": 0.5, "2": 0.75}},
}


def test_table_has_a_row_per_method_and_column_per_step():
    table = accuracy_table(METHODS, spread={"hsd": {"2": 0.012}})
    lines = table.splitlines()
    assert lines[0] == "| method | trained at T | T=1 | T=2 | T=10 |"
    assert lines[2] == "| HSD | 2 | 90.0 | 95.5 ± 1.2 | 80.0 |"
    assert lines[3] == "| converted | – | 50.0 | 75.0 |  |"
    assert lines[4] == "| *event time to decision* | | 30 ms | 61 ms | 300 ms |"


def test_plot_writes_a_png(tmp_path):
    out = plot_accuracy_vs_steps(METHODS, tmp_path / "p.png", reference=("teacher", 0.97))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
