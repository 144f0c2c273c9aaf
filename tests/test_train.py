"""scripts/train.py end to end, as a user runs it, on the tiny generated MNIST files."""

import csv
import itertools
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from cli import run_script, train
from nndl.build import check_processes
from nndl.errors import ConfigError
from sweep_runs import Run

SCALARS = {"train/loss", "train/acc", "val/loss", "val/acc", "test/loss", "test/acc"}
HPARAM_KEYS = {"model", "architecture", "cost", "activation", "optimizer", "lr", "batch_size", "seed", "init"}
HPARAM_METRICS = {"hp/val_acc", "hp/val_loss", "hp/test_acc", "hp/test_loss"}


def read_run(run_dir: Path) -> tuple[set[str], dict, set[str]]:
    """The run's scalar tags, its hyperparameters and the metric tags of its HPARAMS table, read by TensorBoard."""
    events = EventAccumulator(str(run_dir))
    events.Reload()
    content = events.PluginTagToContent("hparams")
    start = plugin_data_pb2.HParamsPluginData.FromString(content["_hparams_/session_start_info"]).session_start_info
    hparams = {k: v.string_value or v.number_value for k, v in start.hparams.items()}
    exp = content.get("_hparams_/experiment")  # a sweep's experiment config; a single run has none
    if exp is None:
        return set(events.Tags()["scalars"]), hparams, HPARAM_METRICS
    metric_infos = plugin_data_pb2.HParamsPluginData.FromString(exp).experiment.metric_infos
    return set(events.Tags()["scalars"]), hparams, {m.name.tag for m in metric_infos}


def test_default_run_trains_tests_and_logs(default_run: Run):
    run = default_run.dir
    assert "Final metrics" in default_run.stdout and "test/acc" in default_run.stdout
    assert "Tip:" not in default_run.stdout + (run / "train.log").read_text()  # Lightning's advertisement

    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and metrics["best_epoch"] in (0, 1)
    assert metrics["test/acc"] > 0.5  # the generated digits are easy: a broken training loop stays near 0.1
    assert Path(metrics["checkpoint"]).parent == run / "checkpoints"
    assert (run / "checkpoints" / "last.ckpt").is_file()
    assert (run / ".hydra" / "config.yaml").is_file()

    tags, hparams, metric_tags = read_run(run)
    assert SCALARS | HPARAM_METRICS <= tags
    assert hparams["model"] == "mlp" and hparams["architecture"] == "784-30-10" and hparams["lr"] == 3.0
    assert HPARAM_KEYS <= hparams.keys()
    assert metric_tags == HPARAM_METRICS


def test_cnn_with_adam(shared_mnist, tmp_path):
    result = train(shared_mnist, "model=cnn", "optimizer=adam", "debug=fast", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    _, hparams, _ = read_run(tmp_path)
    assert (hparams["model"], hparams["cost"], hparams["optimizer"], hparams["batch_size"]) == (
        "cnn",
        "log_likelihood",
        "adam",
        "50",  # integers as text: TensorBoard would show 50.000
    )
    assert hparams["architecture"] == "conv16-conv32-fc100-10" and hparams["conv_activation"] == "relu"


def test_multirun_logs_every_job_side_by_side(four_run_sweep):
    """-m cost=quadratic,cross_entropy optimizer=sgd,adam: four jobs, each its own run directory."""
    jobs = sorted(p.name for p in four_run_sweep.iterdir() if p.is_dir())
    assert jobs == [  # only what varies between the jobs
        "0_cost=quadratic,opt=sgd",
        "1_cost=quadratic,opt=adam",
        "2_cost=cross_entropy,opt=sgd",
        "3_cost=cross_entropy,opt=adam",
    ]
    seen = set()
    for job in jobs:
        tags, hparams, metric_tags = read_run(four_run_sweep / job)
        assert SCALARS | HPARAM_METRICS <= tags, job
        assert hparams.keys() == {"cost", "optimizer", "lr", "status"} and HPARAM_METRICS <= metric_tags
        seen.add((hparams["cost"], hparams["optimizer"]))
    assert seen == {(c, o) for c in ("quadratic", "cross_entropy") for o in ("sgd", "adam")}


def test_missing_data_is_one_clear_error(tmp_path):
    result = train(tmp_path / "nowhere", "data.download=false", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 1
    assert "error: MNIST files not found in" in result.stderr and "NNDL_DATA_DIR" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "nowhere").exists()


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("data.batch_size=0", "error: data.batch_size=0 is out of range"),
        ("model.init=zeros", "error: model.init='zeros' is not allowed: choose one of large, default"),
        # 500 training images in mini-batches of 125: 4 updates, one of them the warm-up
        ("scheduler=one_cycle data.batch_size=125", "error: scheduler.pct_start=0.25 of the run's 4 updates leaves"),
        ("+trainer.gradient_clip_val=1", "error: trainer.gradient_clip_val=1 is not allowed: the networks here"),
        ("+trainer.max_epoch=3", "error: trainer.max_epoch is not a setting of lightning.pytorch.Trainer"),  # a typo
        ("+callbacks.model_checkpoint.mode_=max", "error: callbacks.model_checkpoint.mode_ is not a setting of"),
        ("+trainer.profiler=foo", "error: trainer: When passing string value for the `profiler` parameter"),
        ("+trainer.strategy=fsdp", "error: trainer: The strategy `fsdp` requires a GPU accelerator"),
        ("hparams_search=mlp_optuna", "error: hparams_search=mlp_optuna searches only in a sweep: add -m"),
        # a trial of a search resumed alone (its overrides hold hparams_search): on to the resume's own check
        ("hparams_search=mlp_optuna resume=/nonexistent", "error: resume=/nonexistent: no checkpoints/last.ckpt"),
        ("trainer.devices=-1", "error: trainer: `devices` selected with `CPUAccelerator` should be an int > 0"),
    ],
)
def test_bad_config_values_are_named(shared_mnist, tmp_path, override, message):
    result = train(shared_mnist, *override.split(), "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="a machine with a GPU trains there")
def test_a_gpu_asked_for_where_there_is_none_is_named(tmp_path):
    result = train(tmp_path / "nowhere", "trainer=gpu", f"hydra.run.dir={tmp_path / 'run'}")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "error: trainer.accelerator=gpu, but this machine has no GPU: add trainer.accelerator=cpu" in result.stderr
    assert not (tmp_path / "nowhere").exists()  # before any data is looked for


def test_several_processes_with_lightnings_own_sampler_are_refused():
    with pytest.raises(ConfigError, match=r"trainer\.devices=auto starts 4 processes with Lightning's own sampler"):
        check_processes(4, OmegaConf.create({"devices": "auto"}))  # e.g. a node of 4 GPUs
    check_processes(4, OmegaConf.create({"devices": 4, "use_distributed_sampler": False}))  # trainer=ddp
    check_processes(1, OmegaConf.create({"devices": "auto"}))


def first_gradient_norms(run_dir: Path, layers: int) -> list[float]:
    events = EventAccumulator(str(run_dir))
    events.Reload()
    return [events.Scalars(f"grad_norm/layer_{l}")[0].value for l in range(1, layers + 1)]


@pytest.fixture(scope="module")
def chapter5_sweep(shared_mnist: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Chapter 5's networks of vanishing (job 0) and of exploding gradients (job 1), one epoch each, in one sweep."""
    sweep = tmp_path_factory.mktemp("chapter5") / "sweep"
    experiments = "experiment=ch5_784_30_30_30_30_10,ch5_exploding"
    result = train(shared_mnist, "-m", experiments, "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}")
    assert result.returncode == 0, result.stderr
    return sweep


def test_vanishing_gradients_earlier_layers_learn_slower(chapter5_sweep):
    """Chapter 5: in the [784, 30, 30, 30, 30, 10] sigmoid network, ‖∂C/∂b^l‖ grows from the first hidden
    layer to the last; each layer learns several times faster than the one before it."""
    [run] = chapter5_sweep.glob("0_*")
    speeds = first_gradient_norms(run, 5)
    assert all(earlier * 2 < later for earlier, later in itertools.pairwise(speeds[:4])), speeds


def test_exploding_gradients_earlier_layers_learn_faster(chapter5_sweep):
    [run] = chapter5_sweep.glob("1_*")
    speeds = first_gradient_norms(run, 5)
    assert all(earlier > 2 * later for earlier, later in itertools.pairwise(speeds)), speeds


def test_universality_sweep_fits_better_with_more_hidden_neurons(tmp_path):
    """Chapter 4: one hidden layer approximates f(x); the figure of the fit lands in TensorBoard."""
    result = train(
        tmp_path / "no-mnist-needed", "-m", "experiment=universality", "model.hidden=2,50", "trainer.max_epochs=20",
        f"hydra.sweep.dir={tmp_path / 'sweep'}", val_size=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    losses = {}
    for hidden in (2, 50):
        [run] = (tmp_path / "sweep").glob(f"*_hidden={hidden}")
        events = EventAccumulator(str(run), size_guidance={"images": 0})
        events.Reload()
        assert [image.step for image in events.Images("universality/fit")] == [9, 19]  # epochs 10 and 20, from 0
        losses[hidden] = json.loads((run / "metrics.json").read_text())["test/loss"]
    assert losses[50] < losses[2] / 2, losses


def test_a_run_without_validation_still_tests_and_reports(shared_mnist, tmp_path):
    result = train(shared_mnist, "+trainer.limit_val_batches=0", "trainer.max_epochs=1", f"hydra.run.dir={tmp_path}")
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["best_epoch"] == 0 and "test/acc" in metrics and "val/acc" not in metrics


def summarize(directory: Path) -> subprocess.CompletedProcess:
    return run_script("summarize", str(directory))


def test_summary_of_a_sweep_and_of_a_single_run(four_run_sweep, tmp_path):
    sweep = Path(shutil.copytree(four_run_sweep, tmp_path / "sweep"))  # a copy: the other tests read the sweep's
    for name in ("summary.csv", "summary.md", "curves.png"):  # as the sweep wrote them at its end: written again here
        (sweep / name).unlink()

    assert summarize(sweep).returncode == 0
    with open(sweep / "summary.csv") as f:
        rows = list(csv.DictReader(f))
    shared = "trainer.max_epochs=2 data.val_size=100 logger=many tags=[smoke,ci]"
    assert sorted(row["overrides"] for row in rows) == [
        f"cost={cost} optimizer={optimizer} {shared}"
        for cost in ("cross_entropy", "quadratic")
        for optimizer in ("adam", "sgd")
    ]
    accs = [float(row["best_val_acc"]) for row in rows]
    assert accs == sorted(accs, reverse=True)
    for row in rows:
        assert row["status"] == "ok" and row["epochs"] == "2" and row["best_epoch"] in ("0", "1")
        metrics = json.loads((sweep / row["run"] / "metrics.json").read_text())
        assert float(row["test_acc"]) == pytest.approx(metrics["test/acc"], abs=1e-4)
    assert (sweep / "summary.md").read_text().count("\n") == 10  # overrides, tags, each + blank; header, rule, 4 runs
    assert (sweep / "curves.png").read_bytes()[:4] == b"\x89PNG"

    single = next(p for p in sweep.iterdir() if p.is_dir())
    assert summarize(single).returncode == 0
    assert (single / "summary.csv").read_text().count("\n") == 2


def test_summary_of_a_directory_without_runs(tmp_path):
    result = summarize(tmp_path)
    assert result.returncode == 1 and "no runs" in result.stderr


def test_reproduce_names_what_failed_and_says_so_in_its_exit_status(shared_mnist, tmp_path):
    bad = run_script("reproduce", "--presets", "ch1_784_30_10", "--epochs", "0", data_dir=shared_mnist)
    assert bad.returncode == 2 and "--epochs 0 is out of range: it must be an integer ≥ 1" in bad.stderr
    args = ["--presets", "ch1_784_30_10", "optimizer.lrr=1", f"paths.log_dir={tmp_path}"]
    result = run_script("reproduce", *args, data_dir=shared_mnist)
    assert result.returncode == 1 and "error: 1 of 1 presets failed: ch1_784_30_10" in result.stderr
    (results,) = (tmp_path / "reproduce").glob("*/results.md")  # under the run's own paths.log_dir
    assert "failed: Could not override 'optimizer.lrr'." in results.read_text()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--cases", "mlp_ch1,bogus"], "--cases: unknown bogus; choose from mlp_ch1,"),
        (["--repeats", "0"], "--repeats 0 is out of range: it must be an integer ≥ 1"),
        (["--threads", "0"], "--threads 0 is out of range"),
    ],
)
def test_bench_refuses_a_bad_argument_before_it_measures(args, message, tmp_path):
    result = run_script("bench", *args, data_dir=tmp_path)
    assert result.returncode == 2 and message in result.stderr and "Traceback" not in result.stderr
