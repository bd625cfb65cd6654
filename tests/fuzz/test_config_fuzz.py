"""Seeded fuzzing of every config key and of the command line (configs and the command line).

For every key declared in :mod:`hsd.config` the generator derives values that must be refused
(null where not allowed, wrong types, out of range, non-finite, fractional where whole, near-miss
choices, wrong list lengths), near-miss key names and keys written twice; each is given to
``hsd teacher`` through ``--set`` and through a recipe file and must be refused naming the key
before any work starts (the run directory is never created). Values inside the declared range
must be accepted and read back as given.
"""

from __future__ import annotations

import math
import random

import pytest
import yaml

from hsd.config import Config, config_to_dict, iter_settings, load_config
from hsd.config import _parse_kind as parse_kind
from hsd.errors import ConfigError

from .conftest import SEEDS, assert_refused, run_hsd

SETTINGS = list(iter_settings(Config()))


def _yaml(value) -> str:
    return yaml.safe_dump(value, default_flow_style=True).strip().removesuffix("\n...").strip()


def bad_values(spec, kind, rng: random.Random) -> list[tuple[str, str]]:
    """(YAML text, what is wrong) for values that ``spec`` over ``kind`` must refuse."""
    base, item, nullable = parse_kind(kind)
    cases: list[tuple[str, str]] = []
    if not nullable:
        cases.append(("null", "null"))
    scalar = item if base is list else base
    if base is list:
        cases += [("3", "not a list"), ("'x'", "not a list"), ("{a: 1}", "a mapping")]
        if spec.length is not None:
            cases.append((_yaml([1] * (spec.length + 1)), "too long"))
        if spec.nonempty:
            cases.append(("[]", "empty"))
    numbers: list[tuple[object, str]] = []
    if scalar in (int, float):
        if spec.min is not None:
            low = spec.min if spec.min_open else spec.min - (1 if scalar is int else 1e-3)
            numbers.append((low, "below the minimum"))
            numbers.append((spec.min - 10 ** rng.randint(1, 12), "far below the minimum"))
        if spec.max is not None:
            high = spec.max if spec.max_open else spec.max + (1 if scalar is int else 1e-3)
            numbers.append((high, "above the maximum"))
            numbers.append((spec.max + 10 ** rng.randint(1, 12), "far above the maximum"))
        if scalar is float:
            numbers += [(math.nan, "NaN"), (math.inf, "inf"), (-math.inf, "-inf")]
            numbers.append(("1" + "0" * rng.randint(309, 4000), "an integer beyond float"))
        if scalar is int:
            start = spec.min if spec.min is not None else 0
            numbers.append((start + rng.choice([0.5, 1.25, 2.75]), "a fraction"))
        numbers += [("abc", "a string"), (True, "a boolean")]
    elif scalar is bool:
        numbers += [(1, "an int"), ("'yes'", "a string"), (0.5, "a float")]
    elif scalar is str:
        numbers += [(3, "an int"), ([1], "a list"), ('"\\ud800"', "a lone surrogate")]
        if not {"true", "false"} <= set(spec.choices or ()):  # such keys take YAML booleans
            numbers.append((True, "a boolean"))
        if spec.choices:
            word = rng.choice(spec.choices)
            numbers.append((word[:-1] + ("x" if word[-1] != "x" else "y"), "a near-miss choice"))
        if spec.nonempty or spec.pattern:
            numbers.append(("''", "empty"))
    for value, why in numbers:
        text = value if isinstance(value, str) and value[:1] in "'\"1" else _yaml(value)
        if isinstance(value, float) and not math.isfinite(value):
            text = {math.inf: ".inf", -math.inf: "-.inf"}.get(value, ".nan")
        if base is list:
            if isinstance(value, list):
                continue
            filler = [spec.min if spec.min is not None else 1] * max(0, (spec.length or 1) - 1)
            text = "[" + ", ".join([*map(_yaml, filler), text]) + "]"
        cases.append((text, why))
    return cases


def good_values(spec, kind, default, rng: random.Random) -> list[object]:
    base, item, nullable = parse_kind(kind)
    scalar = item if base is list else base
    values: list[object] = []
    if scalar is bool:
        values = [True, False]
    elif scalar is str:
        values = list(spec.choices) if spec.choices else []
    elif scalar in (int, float):
        low = spec.min if spec.min is not None else -1000
        high = spec.max if spec.max is not None else low + 1000
        for _ in range(3):
            x = rng.uniform(low, min(high, low + 100))
            x = round(x) if scalar is int else x
            if (spec.min_open and x <= low) or x < low or (spec.max_open and x >= high) or x > high:
                continue
            values.append(x)
    if base is list and values:
        values = [[v] * (spec.length or rng.randint(1, 3)) for v in values]
    if nullable:
        values.append(None)
    return values


def _cases(seed: int) -> list[tuple[str, str, str]]:
    rng = random.Random(seed)
    cases = []
    for key, spec, kind, _ in SETTINGS:
        cases += [(key, text, why) for text, why in bad_values(spec, kind, rng)]
    return cases


@pytest.mark.parametrize("seed", SEEDS)
def test_every_key_refuses_bad_values_on_the_command_line(seed, tmp_path):
    cases = _cases(seed)
    assert len(cases) > 300  # every key, several faults each
    out = tmp_path / "never"
    for key, text, why in cases:
        result = run_hsd(["teacher", "--set", f"{key}={text}", "--out", out])
        message = assert_refused(result, key)
        assert not out.exists(), f"{key}={text} ({why}): work started before the refusal"
        assert "Traceback" not in message


@pytest.mark.parametrize("seed", SEEDS)
def test_every_key_refuses_bad_values_in_a_recipe(seed, tmp_path):
    rng = random.Random(1000 + seed)
    recipe = tmp_path / "recipe.yaml"
    for key, text, _why in rng.sample(_cases(seed), 120):
        *sections, leaf = key.split(".")
        lines, indent = [], ""
        for section in sections:
            lines.append(f"{indent}{section}:")
            indent += "  "
        lines.append(f"{indent}{leaf}: {text}")
        recipe.write_text("\n".join(lines) + "\n")
        result = run_hsd(["teacher", "--config", recipe, "--out", tmp_path / "never"])
        assert_refused(result, str(recipe), key)


@pytest.mark.parametrize("seed", SEEDS)
def test_near_miss_and_duplicate_keys_are_refused_with_the_nearest_name(seed, tmp_path):
    rng = random.Random(2000 + seed)
    recipe = tmp_path / "recipe.yaml"
    for key, _spec, _kind, default in SETTINGS:
        *sections, leaf = key.split(".")
        if len(leaf) < 4:
            continue
        i = rng.randrange(len(leaf))
        typo = leaf[:i] + leaf[i + 1 :]  # one letter dropped
        wrong = ".".join([*sections, typo])
        if any(wrong == k for k, *_ in SETTINGS):
            continue
        message = assert_refused(run_hsd(["teacher", "--set", f"{wrong}=1"]), wrong)
        assert "unknown config key" in message
        assert f"'{key}'" in message, message  # the nearest valid name
        # the same key written twice in one mapping
        value = _yaml(default)
        lines, indent = [], ""
        for section in sections:
            lines.append(f"{indent}{section}:")
            indent += "  "
        lines += [f"{indent}{leaf}: {value}", f"{indent}{leaf}: {value}"]
        recipe.write_text("\n".join(lines) + "\n")
        message = assert_refused(run_hsd(["teacher", "--config", recipe]), str(recipe))
        assert f"key '{leaf}' is written twice" in message


@pytest.mark.parametrize("seed", SEEDS)
def test_values_in_range_are_accepted_as_given(seed):
    rng = random.Random(3000 + seed)
    accepted = 0
    for key, spec, kind, default in SETTINGS:
        for value in good_values(spec, kind, default, rng):
            text = "null" if value is None else _yaml(value)
            try:
                cfg = load_config(overrides=[f"{key}={text}"])
            except ConfigError as exc:  # only a rule between keys may refuse an in-range value
                assert str(exc).startswith(key.split(".")[0]) or key in str(exc), exc
                continue
            got = config_to_dict(cfg)
            for part in key.split("."):
                got = got[part]
            assert got == value, (key, value, got)
            accepted += 1
    assert accepted > 100


def test_non_numeric_and_non_finite_options_are_refused(tmp_path):
    """Options of the commands (evaluate, data show, export onnx, stream): junk, out of range."""
    rng = random.Random(7)
    junk = ["x", "", "nan", "inf", "-inf", "-1", "0", "1e400", "2.5", "1,,x", "99999999999"]
    ckpt, out = tmp_path / "nope.pt", tmp_path / "o"
    cases = []
    for value in junk:
        cases += [
            (["evaluate", ckpt, "--steps", value], "--steps"),
            (["data", "show", "digits-dvs", "--index", value, "--out", out], "--index"),
            (["data", "show", "digits-dvs", "--frames", value, "--out", out], "--frames"),
            (["export", "onnx", ckpt, out, "--opset", value], "--opset"),
            (["export", "onnx", ckpt, out, "--batch-size", value], "--batch-size"),
        ]
    for opset in (rng.randint(-100, 12), rng.randint(21, 1000)):
        cases.append((["export", "onnx", ckpt, out, "--opset", str(opset)], "--opset"))
    for argv, option in cases:
        result = run_hsd(argv)
        if option == "--index" and argv[argv.index(option) + 1] == "0":  # the one valid value
            assert result.rc == 0 and out.read_bytes()[:4] == b"\x89PNG", result
            continue
        assert_refused(result, option.lstrip("-"))  # argparse's or the dataset's message


# YAML that parses but whose tagged scalars the constructor cannot convert (ValueError,
# KeyError from PyYAML: were internal errors), and an integer longer than Python converts.
UNREADABLE_YAML = [
    "!!int abc",
    "!!int 0x",
    "!!float .",
    "!!bool maybe",
    "!!timestamp 2001-13-45",
    "!!timestamp 2001-12-14 25:00:00",
]


@pytest.mark.parametrize("seed", SEEDS)
def test_unreadable_yaml_values_are_refused(seed, tmp_path):
    rng = random.Random(2000 + seed)
    recipe = tmp_path / "recipe.yaml"
    out = tmp_path / "never"
    texts = [*UNREADABLE_YAML, "9" * rng.randint(4301, 6000)]
    for key, _spec, _kind, _ in rng.sample(SETTINGS, 8):
        for text in texts:
            result = run_hsd(["teacher", "--set", f"{key}={text}", "--out", out])
            assert "not valid YAML" in assert_refused(result, f"--set {key}")
            *sections, leaf = key.split(".")
            recipe.write_text("".join(f"{s}:\n  " for s in sections) + f"{leaf}: {text}\n")
            assert_refused(run_hsd(["teacher", "--config", recipe, "--out", out]), recipe)
            assert not out.exists()


@pytest.mark.parametrize("top", ["list", "key"])
def test_a_yaml_alias_bomb_is_refused_without_writing_it_out(tmp_path, top):
    """Ten levels of ten aliases: 10**10 items if written out (the error message's repr did,
    until memory ran out). Refused at once, the message bounded."""
    anchors = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    anchors += [f"&a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 10)]
    if top == "list":
        text = "".join(f"- {a}\n" for a in anchors)
    else:  # the whole bomb as the value of a number key
        text = f"model:\n  width: [{', '.join(anchors)}]\n"
    recipe = tmp_path / "bomb.yaml"
    recipe.write_text(text)
    message = assert_refused(
        run_hsd(["teacher", "--config", recipe, "--out", tmp_path / "x"]), recipe
    )
    assert len(message) < 600, message
