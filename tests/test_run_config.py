"""nndl.run_config: a run's config from elsewhere builds the lab's own classes and nothing else.

The configs are composed from conf/ as a training run saves them (no training needed), then edited as an attacker
would; every refusal must come before anything is built, so each test also checks that its payload never ran.
"""

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from nndl.buildable import ACTIVATIONS, BUILDABLE, PARTIAL
from nndl.config import compose
from nndl.errors import ConfigError
from nndl.run_config import load_run_config

ROOT = Path(__file__).resolve().parents[1]
PAYLOAD_DIR = "PWNED"


def saved_config(tmp_path: Path, *overrides: str) -> Path:
    """The composed config of a run, as Hydra saves it in ``<run_dir>/.hydra/config.yaml``."""
    cfg = compose(ROOT / "conf", list(overrides), run_dir=tmp_path / "run")
    with_hydra = OmegaConf.to_container(cfg)
    with_hydra.pop("hydra")
    path = tmp_path / "config.yaml"
    OmegaConf.save(OmegaConf.create(with_hydra), path)
    return path


def edited(tmp_path: Path, edit: str, *overrides: str) -> Path:
    """The saved config with the YAML ``edit`` merged into it (as text: escapes and interpolations kept raw)."""
    path = saved_config(tmp_path, *overrides)
    merged = OmegaConf.merge(OmegaConf.load(path), OmegaConf.create(edit))
    OmegaConf.save(merged, path)
    return path


def refused(path: Path, match: str, groups: tuple[str, ...] = ("model", "cost", "activation", "optimizer", "data")):
    with pytest.raises(ConfigError, match=match) as error:
        cfg = load_run_config(path, groups)
        from nndl.build import build_model  # only reached when the check failed to refuse

        build_model(cfg)
    assert "\n" not in str(error.value)
    return str(error.value)


@pytest.mark.parametrize("overrides", [[], ["model=cnn"], ["model=curve"], ["experiment=speedrun"]])
def test_the_labs_own_configs_pass_and_come_back_resolved_and_frozen(tmp_path, overrides):
    cfg = load_run_config(saved_config(tmp_path, *overrides), ("model", "cost", "activation", "optimizer", "data"))
    assert OmegaConf.is_readonly(cfg)
    assert "${" not in OmegaConf.to_yaml(cfg)
    assert set(cfg.trainer) <= {"accelerator", "devices", "precision", "deterministic"}


def test_every_target_of_conf_is_in_the_list_and_every_listed_name_is_a_class():
    import importlib

    for name in set().union(*BUILDABLE.values()):
        module, _, attribute = name.rpartition(".")
        assert isinstance(getattr(importlib.import_module(module), attribute), type), name
    for group, allowed in BUILDABLE.items():
        folder = ROOT / "conf" / group.split(".")[0]
        if group == "model.conv_activation":
            assert allowed == ACTIVATIONS
            continue
        for file in folder.glob("*.yaml"):
            target = OmegaConf.load(file).get("_target_")
            if target is not None:
                assert target in allowed, f"{file}: add {target} to nndl.buildable.BUILDABLE[{group!r}]"
    assert PARTIAL <= BUILDABLE.keys()


@pytest.mark.parametrize(
    ("edit", "match"),
    [
        # a module-level function under an allowed prefix
        ("model: {_target_: torch.load, f: evil.pt, weights_only: false}", r"model\._target_='torch\.load' is not"),
        # a bound method of an allowed class: Trainer.fit takes ckpt_path
        ("model: {_target_: lightning.pytorch.Trainer.fit}", r"model\._target_='lightning\.pytorch\.Trainer\.fit'"),
        # a class outside the list, and an allowed class in the wrong place
        ("cost: {_target_: torch.nn.Bilinear}", r"cost\._target_='torch\.nn\.Bilinear' is not allowed: cost may only"),
        ("optimizer: {_target_: nndl.models.MLP}", r"optimizer\._target_='nndl\.models\.MLP' is not allowed"),
        ("cost: {_target_: os.system, command: touch PWNED}", r"cost\._target_='os\.system' is not allowed"),
        # a nested _target_ under an allowed one
        (
            "model: {init: {_target_: builtins.eval, _args_: ['1']}}",
            r"model\.init\._target_='builtins\.eval' is not allowed: nothing is built at model\.init",
        ),
        # Hydra's other keys: positional arguments, recursion and conversion switches
        ("optimizer: {_args_: [1]}", r"optimizer\._args_=\[1\] is not allowed: a run's config may not use _args_"),
        ("model: {_recursive_: false}", r"model\._recursive_=False is not allowed"),
        ("model: {_convert_: all}", r"model\._convert_='all' is not allowed"),
        ("cost: {_partial_: true}", r"cost\._partial_=True is not allowed here"),
        # an interpolation to a top-level key that holds something buildable
        (
            "{evil: {_target_: os.makedirs, name: PWNED}, model: {dropout: '${evil}'}}",
            r"model\.dropout\._target_='os\.makedirs' is not allowed",
        ),
        # an interpolation that swaps a whole group
        ("{evil: {_target_: torch.load, f: x}, cost: '${evil}'}", r"cost\._target_='torch\.load' is not allowed"),
        # resolvers: the environment, one of OmegaConf's own, a custom one, one nested in a key interpolation
        ("model: {dropout: '${oc.env:HOME}'}", r"model\.dropout='\$\{oc\.env:HOME\}' is not allowed: .* resolvers"),
        ("model: {dropout: '${oc.create:{_target_: os.system}}'}", r"model\.dropout=.* resolvers"),
        ("model: {dropout: '${nndl_evil:x}'}", r"model\.dropout=.* resolvers"),
        ("model: {dropout: '${model.${oc.env:X}}'}", r"model\.dropout=.* resolvers"),
        ("callbacks: {x: '${oc.env:HOME}'}", r"callbacks\.x=.* resolvers"),
        # an escaped interpolation, literal once resolved, would come alive when the config is re-created
        ("{evil: {_target_: os.system}, model: {dropout: '\\${evil}'}}", r"model\.dropout='\$\{evil\}' is not allowed"),
    ],
)
def test_a_run_config_cannot_build_anything_else(tmp_path, edit, match):
    path = edited(tmp_path, edit)
    message = refused(path, match)
    assert message.startswith(f"{path}: ")
    assert not (Path.cwd() / PAYLOAD_DIR).exists()


def test_a_custom_resolver_is_refused_even_when_registered(tmp_path):
    ran = []
    OmegaConf.register_new_resolver("nndl_test_payload", lambda: ran.append(1) or 0.0, replace=True)
    try:
        refused(edited(tmp_path, "model: {dropout: '${nndl_test_payload:}'}"), r"model\.dropout=.* resolvers")
    finally:
        OmegaConf.clear_resolver("nndl_test_payload")
    assert not ran


def test_the_trainer_gives_only_its_plain_settings(tmp_path):
    path = edited(tmp_path, "trainer: {_target_: os.system, plugins: [x], default_root_dir: /etc, precision: 32-true}")
    cfg = load_run_config(path)
    assert dict(cfg.trainer) == {"accelerator": "cpu", "devices": 1, "precision": "32-true", "deterministic": False}
    path = edited(tmp_path, "trainer: {devices: {_target_: os.system}}")
    refused(path, r"trainer\.devices=.* a Trainer setting is a plain value")


def test_a_file_that_is_not_yaml_or_holds_python_tags(tmp_path):
    bad = tmp_path / "config.yaml"
    bad.write_text("model: !!python/object/apply:os.system ['touch PWNED']\n")
    refused(bad, r"not a readable YAML config")
    bad.write_text("model: [unclosed\n")
    refused(bad, r"not a readable YAML config")


def test_the_built_object_is_the_checked_one(tmp_path):
    cfg = load_run_config(saved_config(tmp_path, "model=cnn"))
    with pytest.raises(Exception, match="read-only"):
        cfg.model._target_ = "os.system"


def test_a_run_made_before_a_setting_was_renamed_still_builds(tmp_path):
    """Until 2026-11-30 a run saved data.mini_batches_per_step; it is read as data.examples_per_step."""
    path = saved_config(tmp_path, "model=cnn")  # batch_size 50
    old = OmegaConf.load(path)
    old.data.pop("examples_per_step")
    old.data.mini_batches_per_step = 20
    OmegaConf.save(old, path)
    cfg = load_run_config(path, ("model", "cost", "activation", "optimizer", "data"))
    assert cfg.data.examples_per_step == 20 * 50
    assert "mini_batches_per_step" not in cfg.data
    from nndl.build import build

    assert build(cfg.data).examples_per_step == 1000


def test_a_setting_the_class_does_not_take_is_named(tmp_path):
    cfg = load_run_config(edited(tmp_path, "data: {mini_batch_size: 10}"), ("data",))
    from nndl.build import build

    with pytest.raises(ConfigError) as error:
        build(cfg.data)
    assert str(error.value).startswith("data.mini_batch_size is not a setting of nndl.data.MNISTDataModule")
    assert "\n" not in str(error.value)
