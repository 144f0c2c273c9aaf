"""scripts/eval.py and scripts/export.py on the checkpoints of a one-epoch run, and nndl.checkpoints' safety checks."""

import json
import re
import shutil
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from torch import nn

from cli import run_script, train
from nndl.build import build_model
from nndl.checkpoints import load_model, load_run_config
from nndl.costs import LogLikelihoodCost
from nndl.data import MNISTDataModule
from nndl.errors import CheckpointError, ConfigError
from nndl.evaluate import trainer_config
from nndl.models import CNN

# A small CNN with BatchNorm: conv weights kept channels-last, and buffers (running statistics) besides parameters.
CNN_RUN = ["model=cnn", "model.channels=[4,8]", "model.fc_sizes=[16]", "model.batch_norm=true", "trainer.max_epochs=1"]


@pytest.fixture(scope="module")
def run_dir(shared_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One training run, shared by the tests of this module: its directory, with metrics.json and checkpoints/."""
    run = tmp_path_factory.mktemp("cnn_run")
    result = train(shared_mnist, *CNN_RUN, f"hydra.run.dir={run}")
    assert result.returncode == 0, result.stderr
    return run


def test_checkpoints_of_the_lab_load_with_weights_only(run_dir):
    for ckpt in (run_dir / "checkpoints").glob("*.ckpt"):
        checkpoint = torch.load(ckpt, weights_only=True)
        assert {"state_dict", "hyper_parameters", "optimizer_states", "callbacks", "loops"} <= checkpoint.keys()
        assert checkpoint["hyper_parameters"]["channels"] == [4, 8]


def test_eval_reproduces_the_test_metrics_training_reported(run_dir, shared_mnist, tmp_path):
    trained = json.loads((run_dir / "metrics.json").read_text())
    out = tmp_path / "eval"
    # NNDL_DATA_DIR points nowhere: data.data_dir= must win, as in training.
    result = run_script(
        "eval", f"ckpt_path={trained['checkpoint']}", f"data.data_dir={shared_mnist}", f"hydra.run.dir={out}",
        data_dir=tmp_path / "nowhere",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test/acc"] == trained["test/acc"]
    assert metrics["test/loss"] == pytest.approx(trained["test/loss"], rel=1e-6)
    assert metrics["checkpoint"] == trained["checkpoint"] and metrics["data_dir"] == str(shared_mnist)
    assert metrics["config"] == str(run_dir / ".hydra" / "config.yaml")
    assert f"test/acc   {trained['test/acc']:.4f}" in result.stdout and f"Eval directory: {out}" in result.stdout

    events = EventAccumulator(str(out))
    events.Reload()
    [logged] = events.Scalars("test/acc")
    assert logged.value == pytest.approx(trained["test/acc"], abs=1e-7)
    assert not (tmp_path / "nowhere").exists()


def test_eval_with_the_config_given_and_the_data_dir_from_the_environment(run_dir, shared_mnist, tmp_path):
    """A checkpoint moved away from its run directory: its config given with config_path= (the run directory);
    the saved ${paths.data_dir} resolves NNDL_DATA_DIR, as in training."""
    ckpt = Path(shutil.copy(run_dir / "checkpoints" / "last.ckpt", tmp_path / "moved.ckpt"))
    out = tmp_path / "eval"
    result = run_script(
        "eval", f"ckpt_path={ckpt}", f"config_path={run_dir}", f"hydra.run.dir={out}", data_dir=shared_mnist
    )
    assert result.returncode == 0, result.stderr
    trained = json.loads((run_dir / "metrics.json").read_text())  # one epoch: the last checkpoint is the best
    assert json.loads((out / "metrics.json").read_text())["test/acc"] == trained["test/acc"]


def test_export_writes_a_state_dict_that_loads_without_lightning(run_dir, shared_mnist, tmp_path):
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    output = tmp_path / "exported" / "cnn.pt"
    result = run_script("export", f"ckpt_path={ckpt}", f"output={output}", f"hydra.run.dir={tmp_path / 'export'}")
    assert result.returncode == 0, result.stderr
    assert str(output) in result.stdout and output.with_suffix(".yaml").is_file()
    written = output.read_bytes()
    output.with_suffix(".yaml").write_text("mine: true\n")  # a file of the user's own, beside the output
    again = run_script("export", f"ckpt_path={ckpt}", f"output={output}", f"hydra.run.dir={tmp_path / 'export2'}")
    assert again.returncode == 1 and f"error: output={output} would replace {output} and " in again.stderr
    assert output.read_bytes() == written and output.with_suffix(".yaml").read_text() == "mine: true\n"
    replaced = run_script(
        "export", f"ckpt_path={ckpt}", f"output={output}", "overwrite=true", f"hydra.run.dir={tmp_path / 'export3'}"
    )
    assert replaced.returncode == 0, replaced.stderr
    assert "mine" not in output.with_suffix(".yaml").read_text()
    unclear = run_script(
        "export", f"ckpt_path={ckpt}", f"output={output}", "overwrite=no", f"hydra.run.dir={tmp_path / 'export4'}"
    )  # Hydra reads "no" as a string, not false
    assert unclear.returncode == 1 and "error: overwrite='no' is not allowed: choose true or false" in unclear.stderr

    state_dict = torch.load(output, weights_only=True)
    assert state_dict.keys() == torch.load(ckpt, weights_only=True)["state_dict"].keys()
    assert any("running_mean" in key for key in state_dict)

    # The README's two ways back: the model built from its exported config, or its class called directly.
    from_config = build_model(OmegaConf.load(output.with_suffix(".yaml")))
    from_config.load_state_dict(torch.load(output, weights_only=True))
    from_run_config = build_model(OmegaConf.load(run_dir / ".hydra" / "config.yaml"))
    from_run_config.load_state_dict(torch.load(output, weights_only=True))
    direct = CNN(
        cost=LogLikelihoodCost(), optimizer=None, activation=nn.Sigmoid, conv_activation=nn.ReLU,
        channels=[4, 8], fc_sizes=[16], batch_norm=True,
    )  # fmt: skip
    direct.load_state_dict(torch.load(output, weights_only=True))
    # The checkpoint's model, loaded by Lightning's own mechanism; and the plain state_dict, through nndl's loader.
    reference = CNN.load_from_checkpoint(
        ckpt, cost=LogLikelihoodCost(), optimizer=None, activation=nn.Sigmoid, conv_activation=nn.ReLU,
        weights_only=True, map_location="cpu",
    )  # fmt: skip
    reloaded = load_model(output, load_run_config(run_dir / ".hydra" / "config.yaml"))

    data = MNISTDataModule(shared_mnist, download=False, val_size=100)
    data.setup("test")
    x = next(iter(data.test_dataloader())).x
    with torch.no_grad():
        expected = reference.eval()(x)
        for model in (from_config, from_run_config, direct, reloaded):
            assert torch.equal(model.eval()(x), expected)
    assert expected.std() > 0


def test_export_by_default_writes_into_its_run_directory(run_dir, tmp_path):
    out = tmp_path / "export"
    result = run_script("export", f"ckpt_path={run_dir / 'checkpoints' / 'last.ckpt'}", f"hydra.run.dir={out}")
    assert result.returncode == 0, result.stderr
    assert f"to {out / 'model.pt'}" in result.stdout
    assert (out / "model.pt").is_file() and (out / "model.yaml").is_file()


def test_export_to_a_place_it_cannot_write_is_named(run_dir, tmp_path):
    ckpt, afile = run_dir / "checkpoints" / "last.ckpt", tmp_path / "a.png"
    afile.write_bytes(b"")
    places = [(afile / "model.pt", f"{afile} is a file, not a folder"), ("/proc/x.pt", "cannot be written")]
    for n, (output, reason) in enumerate(places):
        result = run_script("export", f"ckpt_path={ckpt}", f"output={output}", f"hydra.run.dir={tmp_path / str(n)}")
        line = one_error_line(result)
        assert line.startswith(f"error: output={output}") and reason in line, line


def one_error_line(result) -> str:
    """The single line a script prints on stderr for bad input, after checking it exits 1 without a traceback."""
    assert result.returncode == 1, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in result.stderr, result.stderr
    return lines[0]


def test_eval_without_a_checkpoint_says_which_key(tmp_path):
    line = one_error_line(run_script("eval", f"hydra.run.dir={tmp_path}"))
    assert line.startswith("error: ckpt_path is missing: give it on the command line, e.g. ckpt_path=")


def test_eval_of_a_missing_checkpoint_names_it(tmp_path):
    line = one_error_line(run_script("eval", f"ckpt_path={tmp_path / 'none.ckpt'}", f"hydra.run.dir={tmp_path}"))
    assert line.startswith(f"error: ckpt_path={tmp_path / 'none.ckpt'}: no such file; expected a checkpoint")


def test_a_checkpoint_without_its_run_config_asks_for_config_path(run_dir, tmp_path):
    ckpt = shutil.copy(run_dir / "checkpoints" / "last.ckpt", tmp_path / "alone.ckpt")
    line = one_error_line(run_script("export", f"ckpt_path={ckpt}", f"hydra.run.dir={tmp_path / 'out'}"))
    assert line.startswith(f"error: no run config found for {ckpt}: looked for ")
    assert "give the run's config with config_path=<run_dir>/.hydra/config.yaml" in line


def test_a_file_that_is_not_a_checkpoint_is_refused(run_dir, tmp_path):
    fake = tmp_path / "notes.ckpt"
    fake.write_text("not a checkpoint\n")
    line = one_error_line(
        run_script("eval", f"ckpt_path={fake}", f"config_path={run_dir}", f"hydra.run.dir={tmp_path / 'eval'}")
    )
    assert line.startswith(f"error: {fake}: not a checkpoint that can be loaded safely (")


@pytest.mark.parametrize(
    ("override", "plain", "message"),
    [
        (
            "model.fc_sizes=[32]",
            False,
            r"\(conv4-conv8-fc32-10\): model\.fc_sizes: \[16\] in the checkpoint, \[32\] in",
        ),
        ("model.dropout=0.5", False, r"\(conv4-conv8-fc16-10\): model\.dropout: 0\.0 in the checkpoint, 0\.5 in"),
        ("model.fc_sizes=[32]", True, r"\(conv4-conv8-fc32-10\): .*size mismatch for classifier"),  # no hparams saved
    ],
)
def test_a_config_that_does_not_fit_the_checkpoint(run_dir, tmp_path, override, plain, message):
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    if plain:  # a state_dict as scripts/export.py writes it: only the shapes can disagree
        torch.save(torch.load(ckpt, weights_only=True)["state_dict"], tmp_path / "plain.pt")
        ckpt = tmp_path / "plain.pt"
    cfg = OmegaConf.create(OmegaConf.to_container(load_run_config(run_dir / ".hydra" / "config.yaml")))  # writable
    key, value = override.split("=")
    OmegaConf.update(cfg, key, OmegaConf.create(f"v: {value}").v)
    with pytest.raises(CheckpointError, match=f"{re.escape(str(ckpt))} does not fit the model of its config {message}"):
        load_model(ckpt, cfg)


@pytest.mark.parametrize(
    ("key", "target"),
    [("cost", "os.system"), ("model", "torch.hub.load"), ("activation", "torch.nn.functional.torch.hub.load")],
)
def test_a_config_may_only_build_the_labs_own_objects(run_dir, tmp_path, key, target):
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    cfg[key]._target_ = target
    OmegaConf.save(cfg, tmp_path / "config.yaml")
    with pytest.raises(ConfigError, match=f"{key}._target_='{target}' is not allowed"):
        load_run_config(tmp_path / "config.yaml")


@pytest.mark.parametrize("script", ["export", "eval"])
def test_an_interpolation_cannot_bring_in_another_target(run_dir, tmp_path, script):
    cfg = OmegaConf.load(run_dir / ".hydra" / "config.yaml")
    cfg.evil = {"_target_": "os.makedirs", "name": str(tmp_path / "PWNED")}
    cfg.model.dropout = "${evil}"
    OmegaConf.save(cfg, tmp_path / "config.yaml")
    ckpt = run_dir / "checkpoints" / "last.ckpt"
    args = [f"ckpt_path={ckpt}", f"config_path={tmp_path / 'config.yaml'}", f"hydra.run.dir={tmp_path / 'out'}"]
    line = one_error_line(run_script(script, *args))
    assert "model.dropout._target_='os.makedirs' is not allowed" in line
    assert not (tmp_path / "PWNED").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a GPU evaluates there")
def test_a_run_trained_on_a_gpu_is_evaluated_here_when_asked_to_use_the_cpu():
    run_cfg = OmegaConf.create({"trainer": {"accelerator": "gpu", "devices": 1, "precision": "32-true"}})
    with pytest.raises(ConfigError, match=r"trainer\.accelerator=gpu, but this machine has no GPU: add trainer\."):
        trainer_config(run_cfg, None)
    assert trainer_config(run_cfg, OmegaConf.create({"accelerator": "cpu"})).accelerator == "cpu"


def test_an_evaluations_unknown_trainer_key_is_named_with_its_group():
    from nndl.build import build

    run_cfg = OmegaConf.create({"trainer": {"accelerator": "cpu", "devices": 1}})
    with pytest.raises(ConfigError, match=r"^trainer\.foo is not a setting of lightning\.pytorch\.Trainer"):
        build(trainer_config(run_cfg, OmegaConf.create({"foo": 1})))
