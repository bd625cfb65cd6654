"""The YAML recipes that ship inside the package, found by name.

``hsd teacher --config nmnist`` (or ``nmnist.yaml``) reads ``hsd/recipes/nmnist.yaml`` from the
installed package; a path to an existing file is read as it is. ``hsd recipes`` lists them and
``hsd recipes NAME`` prints one, to copy and edit (``hsd recipes nmnist > my.yaml``).

Decision: this folder is the only copy of the recipes (the repository has no ``configs/`` any
more); a file path that does not exist but names a recipe (``configs/nmnist.yaml``) is refused
with a hint to use the name. No recipe names a dataset folder: roots come from ``--root``,
``data.root`` or an environment variable (:func:`hsd.data.registry.default_root`).
"""

from __future__ import annotations

from pathlib import Path

from hsd.errors import ConfigError

__all__ = [
    "RECIPES_DIR",
    "describe_recipe",
    "list_recipes",
    "recipe_dataset",
    "recipe_path",
    "resolve_config",
]

RECIPES_DIR = Path(__file__).resolve().parent
_SUFFIXES = (".yaml", ".yml")


def list_recipes() -> list[str]:
    """Names of the shipped recipes, sorted (``["cifar10dvs-vggsnn", "demo", ...]``)."""
    return sorted(p.stem for p in RECIPES_DIR.glob("*.yaml"))


def recipe_path(name: str) -> Path:
    """The file of recipe ``name`` (with or without ``.yaml``); :class:`ConfigError` listing
    the recipes when there is none of that name."""
    stem = name[: -len(suffix)] if (suffix := _suffix(name)) else name
    path = RECIPES_DIR / f"{stem}.yaml"
    if "/" in name or "\\" in name or not path.is_file():
        raise ConfigError(
            f"{name}: no recipe of that name; recipes shipped with hsd: "
            f"{', '.join(list_recipes())} (see `hsd recipes`)"
        )
    return path


def describe_recipe(name: str) -> str:
    """The first sentence of recipe ``name``'s leading comment (what it is for)."""
    lines = []
    for line in recipe_path(name).read_text(encoding="utf-8").splitlines():
        if not line.startswith("#"):
            break
        lines.append(line.lstrip("#").strip())
    text = " ".join(lines)
    end = text.find(". ")
    return text if end < 0 else text[: end + 1]


def recipe_dataset(name: str) -> str:
    """The ``data.dataset`` recipe ``name`` trains on (the default, digits-dvs, when unset)."""
    from hsd.config import load_config

    return load_config(recipe_path(name)).data.dataset


def resolve_config(config: str | Path) -> Path:
    """What ``--config`` means: an existing file as it is, else a shipped recipe by name (also
    when a folder of that name exists here: ``--config demo`` beside a run folder ``demo/``).

    Raises :class:`ConfigError` for a path that exists as neither (naming the recipe when its
    file name is one, e.g. ``configs/nmnist.yaml``) and for a folder."""
    path = Path(config)
    text = str(config)
    names = list_recipes()
    bare = "/" not in text and "\\" not in text
    if path.exists():
        if not path.is_dir():
            return path
        if not (bare and text in names):
            raise ConfigError(f"{path}: is a folder; --config needs a YAML file or a recipe name")
        # a folder named like a recipe (a run called "demo" in the working directory): the
        # recipe, since --config never means a folder
    if bare:
        stem = text[: -len(suffix)] if (suffix := _suffix(text)) else text
        if stem in names:
            return RECIPES_DIR / f"{stem}.yaml"
    stem = path.stem if _suffix(path.name) else path.name
    if stem in names:
        raise ConfigError(
            f"{path}: config file not found; the recipe '{stem}' ships with hsd: use "
            f"--config {stem} (`hsd recipes {stem} > my.yaml` writes a copy to edit)"
        )
    raise ConfigError(
        f"{path}: config file not found, and not a recipe name (recipes: {', '.join(names)})"
    )


def _suffix(name: str) -> str:
    return next((s for s in _SUFFIXES if name.lower().endswith(s)), "")
