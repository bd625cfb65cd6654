from pathlib import Path

import pytest
import yaml

from hsd.config import Config, config_from_dict, config_to_dict, config_with, load_config
from hsd.errors import ConfigError

REPO = Path(__file__).resolve().parents[1]


def test_defaults_are_valid_and_round_trip():
    cfg = load_config()
    assert cfg.data.dataset == "digits-dvs"
    assert config_to_dict(config_from_dict(config_to_dict(cfg))) == config_to_dict(cfg)


def test_overrides_keep_types():
    cfg = load_config(
        overrides=["distill.steps=1", "distill.tau=10", "evaluate.steps=[1,3]", "data.size=[48,48]"]
    )
    assert cfg.distill.steps == 1
    assert isinstance(cfg.distill.tau, float) and cfg.distill.tau == 10.0
    assert cfg.evaluate.steps == [1, 3]
    assert cfg.data.size == [48, 48]


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("distill.stepz=1", r"distill\.stepz: unknown config key \(did you mean 'distill\.steps'"),
        ("distill.steps=two", "distill.steps: must be a whole number, got 'two'"),
        ("distill.steps=11", "cannot exceed data.frames"),
        ("distill.loss=mse", "distill.loss: must be one of skd, kd_mean, anytime, ce, tet"),
        ("data.split_by=space", "data.split_by"),
        ("distill.steps", "not of the form key=value"),
    ],
)
def test_bad_overrides_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        load_config(overrides=[override])


def test_yaml_is_loaded_safely(tmp_path):
    bad = tmp_path / "evil.yaml"
    bad.write_text("name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml")


@pytest.mark.parametrize(
    "recipe", sorted((REPO / "src" / "hsd" / "recipes").glob("*.yaml")), ids=lambda p: p.stem
)
def test_every_recipe_loads(recipe):
    cfg = load_config(recipe)
    assert cfg.name == recipe.stem


def test_demo_recipe_matches_the_demo_defaults():
    """configs/demo.yaml documents `hsd demo`'s defaults; it must not drift from them."""
    recipe = config_to_dict(load_config(REPO / "src" / "hsd" / "recipes" / "demo.yaml"))
    defaults = config_to_dict(Config())
    written = yaml.safe_load((REPO / "src" / "hsd" / "recipes" / "demo.yaml").read_text())

    def check(section_written, section_recipe, section_default, where):
        for key, value in section_written.items():
            if isinstance(value, dict):
                check(value, section_recipe[key], section_default[key], f"{where}{key}.")
            elif key != "name":
                assert section_recipe[key] == section_default[key], f"{where}{key}"

    check(written, recipe, defaults, "")


def test_config_with_copies_changes_and_validates():
    base = load_config()
    changed = config_with(base, distill__loss="anytime", distill__steps=10, seed=3)
    assert (changed.distill.loss, changed.distill.steps, changed.seed) == ("anytime", 10, 3)
    assert (base.distill.loss, base.seed) == ("skd", 0)  # the original is untouched
    with pytest.raises(ConfigError, match=r"distill\.los: unknown .* 'distill\.loss'"):
        config_with(base, distill__los="ce")
    with pytest.raises(ConfigError, match=r"distill\.prefix_weights"):
        config_with(base, distill__prefix_weights="linear")
