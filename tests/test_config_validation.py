"""The one validation layer: every key typed, ranged, finite; nulls, unknown and duplicate keys."""

from __future__ import annotations

import argparse
import math

import pytest

from hsd.config import Config, argtype, config_with, load_config
from hsd.errors import ConfigError, ResourceError
from hsd.runtime import admit


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.limit=-1", r"data\.limit: must be >= 0"),
        ("teacher.optim.grad_clip=-1", r"teacher\.optim\.grad_clip: must be >= 0"),
        ("teacher.optim.grad_clip=.nan", r"grad_clip: must be a finite number"),
        ("data.augment.max_roll=-2", r"data\.augment\.max_roll: must be in \[0, 4096\], got -2"),
        ("data.size=[48.5,48]", r"data\.size\[0\]: must be a whole number, got 48\.5; fractions"),
        ("data.size=[48]", r"data\.size: must have exactly 2 items"),
        ("data.frames=2.5", r"data\.frames: must be a whole number"),
        ("data.frames=true", r"data\.frames: must be a whole number, got True"),
        ("seed=-1", r"seed: must be in \[0, 4294967295\]"),
        ("seed=4294967296", r"seed: must be in"),
        ("teacher.optim.weight_decay=-0.1", r"weight_decay: must be in \[0, 1\]"),
        ("model.width=0", r"model\.width: must be in \(0, 64\]"),
        ("model.width=.inf", r"model\.width: must be a finite number"),
        ("threads=-3", r"threads: must be in \[0, 1024\]"),
        ("device=gpu", r"device: must be 'auto', 'cpu', 'mps', 'cuda' or 'cuda:N', got 'gpu'"),
        ("data.clip=0", r"data\.clip: must be >= 1"),
        ("data.frame_us=0", r"data\.frame_us: must be in \[1, "),
        ("data.frame_us=10000", r"data\.frame_us: .*need data\.split_by=time, got count"),
        ("data.augment.crop=[0,4]", r"data\.augment\.crop\[0\]: must be in \[1, 4096\]"),
        ("data.augment.flip_p=1.5", r"flip_p: must be in \[0, 1\]"),
        ("evaluate.batch_size=0", r"evaluate\.batch_size: must be in \[1, 1048576\]"),
        ("evaluate.steps=[]", r"evaluate\.steps: must not be empty"),
        ("evaluate.steps=[1,0]", r"evaluate\.steps\[1\]: must be in \[1, 100000\]"),
        ("evaluate.steps=3", r"evaluate\.steps: must be a list"),
        ("data.batch_size=null", r"data\.batch_size: null is not allowed here"),
        ("data.dataset=", r"data\.dataset: null is not allowed"),
        ("name=a/b", r"name: must be a name without '/'"),
        ("data.folds=1", r"data\.folds: must be 0 \(off\) or >= 2"),
        ("data.split_by=cout", r"did you mean 'count'"),
        ("data=3", r"data: is a section, not a value"),
        ("data.frames.x=3", r"data\.frames: must be a whole number"),
        ("distill..steps=1", r"is not a dotted key"),
        (
            "data.batch_sise=3",
            r"data\.batch_sise: unknown config key \(did you mean 'data\.batch_size'",
        ),
        ("progress=1", r"progress: must be true or false"),
        ("distill.tau=0", r"distill\.tau: must be > 0"),
        ("teacher.optim.lr=-1e-3", r"lr: must be > 0"),
        ("teacher.optim.momentum=1", r"momentum: must be in \[0, 1\)"),
        ("data.val_fraction=1", r"val_fraction: must be in \[0, 1\)"),
        ("evaluate.steps=[1, {a: 1, a: 2}]", r"key 'a' is written twice"),
    ],
)
def test_bad_values_are_refused_naming_the_key(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_integer_valued_floats_are_accepted_as_ints():
    cfg = load_config(overrides=["data.size=[48.0, 48]", "data.frames=4.0"])
    assert cfg.data.size == [48, 48] and isinstance(cfg.data.size[0], int)
    assert cfg.data.frames == 4 and isinstance(cfg.data.frames, int)


def test_nullable_keys_take_null():
    cfg = load_config(overrides=["data.size=null", "data.clip=~", "data.augment.crop=null"])
    assert (cfg.data.size, cfg.data.clip, cfg.data.augment.crop) == (None, None, None)


def test_duplicate_and_unknown_keys_in_a_recipe(tmp_path):
    recipe = tmp_path / "dup.yaml"
    recipe.write_text("name: x\nteacher:\n  optim:\n    lr: 0.1\n    epochs: 2\n    lr: 0.2\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: line 6: key 'lr' is written twice"):
        load_config(recipe)
    recipe.write_text("name: x\ndata:\n  frams: 4\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: data\.frams: unknown .* 'data\.frames'"):
        load_config(recipe)
    recipe.write_text("- 1\n- 2\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: a recipe is a mapping of keys"):
        load_config(recipe)
    recipe.write_bytes(b"name: \xff\xfe\n")
    with pytest.raises(ConfigError, match=r"dup\.yaml: not a UTF-8 text file"):
        load_config(recipe)
    with pytest.raises(ConfigError, match="is a folder"):
        load_config(tmp_path)


def test_yaml_merge_keys_are_not_duplicates(tmp_path):
    recipe = tmp_path / "merge.yaml"
    recipe.write_text(
        "base: &b {lr: 0.1, epochs: 2}\n"[0:0]
        + "teacher:\n  optim: &o\n    lr: 0.1\n    epochs: 2\n"
        + "baseline:\n  optim:\n    <<: *o\n    epochs: 3\n"
    )
    cfg = load_config(recipe)
    assert (cfg.baseline.optim.lr, cfg.baseline.optim.epochs) == (0.1, 3)


def test_validate_catches_values_set_directly():
    cfg = Config()
    cfg.data.limit = -1
    with pytest.raises(ConfigError, match=r"data\.limit"):
        cfg.validate()
    with pytest.raises(ConfigError, match=r"model\.width: must be a finite number"):
        config_with(Config(), model__width=math.nan)


def test_argtype_checks_like_a_config_key():
    frame_ms = argtype(float, min=0.001)
    assert frame_ms("2.5") == 2.5
    for bad in ("nan", "inf", "-1", "x", "0"):
        with pytest.raises(argparse.ArgumentTypeError):
            frame_ms(bad)
    count = argtype(int, min=1)
    assert count("3") == 3 and count("3.0") == 3
    with pytest.raises(argparse.ArgumentTypeError, match="fractions are refused"):
        count("2.5")


def test_admit_refuses_what_cannot_fit(monkeypatch):
    monkeypatch.setenv("HSD_MEMORY_LIMIT", "1M")
    admit(100_000, "small")
    with pytest.raises(ResourceError, match=r"big thing: needs about 9\.5 MiB .* only 1\.0 MiB"):
        admit(10_000_000, "big thing")
    monkeypatch.setenv("HSD_MEMORY_LIMIT", "lots")
    with pytest.raises(ResourceError, match="HSD_MEMORY_LIMIT"):
        admit(10, "x")


def test_a_recipe_name_means_the_recipe_even_beside_a_folder_of_that_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "demo").mkdir()  # e.g. the run folder of `hsd demo --out demo`
    from hsd.recipes import RECIPES_DIR, resolve_config

    assert resolve_config("demo") == RECIPES_DIR / "demo.yaml"
    (tmp_path / "mine").mkdir()
    with pytest.raises(ConfigError, match="mine: is a folder"):
        load_config("mine")
