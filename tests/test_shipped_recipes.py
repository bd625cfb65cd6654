"""Recipes ship inside the package: found by name (with or without .yaml) or path, listed by
``hsd recipes``; no recipe names a folder of this repository."""

import subprocess
import sys

import pytest

from hsd.config import load_config
from hsd.errors import ConfigError
from hsd.recipes import RECIPES_DIR, describe_recipe, list_recipes, recipe_dataset


def test_recipes_by_name_path_and_refusals(tmp_path, monkeypatch):
    names = list_recipes()
    assert {"demo", "nmnist", "cifar10dvs-vggsnn", "dvsgesture-vggsnn"} <= set(names)
    monkeypatch.chdir(tmp_path)  # from any folder
    assert load_config("cifar10dvs-vggsnn").data.dataset == "cifar10dvs"
    assert load_config("nmnist.yaml").data.dataset == "nmnist"
    own = tmp_path / "mine.yaml"
    own.write_text("data:\n  dataset: nmnist\n  root: /somewhere\n")
    assert load_config(str(own)).data.root == "/somewhere"
    with pytest.raises(ConfigError, match="use --config nmnist"):
        load_config("configs/nmnist.yaml")
    with pytest.raises(ConfigError, match=r"not a recipe name.*demo"):
        load_config("nope")
    for name in names:
        text = (RECIPES_DIR / f"{name}.yaml").read_text()
        assert "shared" not in text and load_config(name).data.root is None
        assert describe_recipe(name).endswith(".") and recipe_dataset(name)


def test_hsd_recipes_command(tmp_path):
    run = [sys.executable, "-m", "hsd.cli", "recipes"]
    out = subprocess.run(run, capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    lines = out.splitlines()
    assert len(lines) == len(list_recipes())
    row = next(line for line in lines if line.startswith("nmnist "))
    assert row.split()[1] == "nmnist" and "N-MNIST" in row
    one = subprocess.run([*run, "demo"], capture_output=True, text=True, cwd=tmp_path, check=True)
    assert one.stdout == (RECIPES_DIR / "demo.yaml").read_text()
    bad = subprocess.run([*run, "nope"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 2 and "hsd: error: nope: no recipe of that name" in bad.stderr
