"""The pieces of a sweep's story that need no run: run names of what varies, the summary's styles and plot,
and the no-learning flag."""

from pathlib import Path
from types import SimpleNamespace

import pytest
from omegaconf import OmegaConf

from nndl.hparams import PRIMARY, swept_hparams
from nndl.outcome import CHANCE, no_learning
from nndl.run_names import job_name, short_value, swept_keys
from nndl.summary_plot import plot, styles
from nndl.tensorboard_hparams import BOOLEANS, FLOATS, STRINGS


def test_a_job_is_named_after_what_varies():
    swept = ["cost", "optimizer"]
    overrides = ["cost=log_likelihood", "optimizer=adam", "trainer.max_epochs=2", "data.train_size=5000"]
    assert job_name(3, overrides, swept) == "3_cost=log_likelihood,opt=adam"
    # Optuna's floats rounded, lists joined, keys in the sweep's order
    optuna = ["optimizer.lr=0.9316087292291501", "model.sizes=[784,100,10]", "data.batch_size=20", "seed=1"]
    name = job_name(7, optuna, ["optimizer.lr", "data.batch_size", "model.sizes"])
    assert name == "7_lr=0.9316,batch=20,sizes=784-100-10"
    assert job_name(0, ["seed=1"], []) == "0"  # nothing varies: the number alone
    assert job_name(2, ["model.dropout=0.5", "+data.dropout=0.1"], ["model.dropout", "data.dropout"]) == (
        "2_model.dropout=0.5,data.dropout=0.1"  # short forms that would clash stay whole
    )
    assert short_value("1e-06") == "1e-06" and short_value("3.0") == "3" and short_value("100") == "100"


def test_what_a_sweep_varies_is_read_from_its_multirun_yaml(tmp_path):
    OmegaConf.save(
        {"hydra": {"overrides": {"task": ["cost=quadratic,cross_entropy", "optimizer.lr=0.1", "seed=range(3)"]}}},
        tmp_path / "multirun.yaml",
    )
    assert swept_keys(tmp_path) == ["cost", "seed"]
    assert swept_keys(tmp_path / "missing") is None
    assert swept_keys(None, {"optimizer.lr": "interval(0.01, 1)", "model.sizes": "choice([784,30,10])"}) == [
        "optimizer.lr",
        "model.sizes",
    ]


def test_the_columns_a_sweep_varies():
    cfg = OmegaConf.create({})
    assert swept_hparams(cfg, ["cost", "optimizer"]) == (["cost", "optimizer"], ["lr"])
    primary, derived = swept_hparams(cfg, ["model", "callbacks.early_stopping.patience"])
    assert primary == ["model", "callbacks.early_stopping.patience"] and {"architecture", "params"} <= set(derived)


def test_every_column_has_one_type_in_tensorboard():
    """A column whose type changed from run to run would be dropped from the HPARAMS table."""
    columns = {*PRIMARY.values(), "params", "tags", "status"}
    assert columns <= STRINGS | BOOLEANS | FLOATS
    assert not (STRINGS & BOOLEANS or STRINGS & FLOATS or BOOLEANS & FLOATS)


@pytest.mark.parametrize("n", [4, 12, 18, 25])
def test_every_run_has_its_own_colour_and_marker(n):
    assert len(set(map(str, styles(n)))) == n
    if n <= 20:
        assert len({str(color) for color, _ in styles(n)}) == n


def row(run: str, status: str = "ok") -> dict:
    return {"run": run, "status": status}


def test_the_plot_draws_one_epoch_sweeps_as_dots_and_lists_what_it_cannot_draw(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    runs = [(row(f"{i}_lr={i}"), {0: 0.1 + 0.04 * i}) for i in range(18)]
    runs += [(row("18_lr=100", "diverged"), {}), (row("19_lr=0.001", "no_learning"), {0: 0.1})]
    plot(runs, tmp_path / "curves.png", not_started=[row("20_lr=5", "not started")])
    (fig,) = saved
    ax = fig.axes[0]
    labels = [t.get_text() for t in ax.get_yticklabels()]
    assert len(labels) == 19 and "19_lr=0.001 (no learning)" in labels  # one row per run that validated
    assert "after epoch 0" in ax.get_title()
    note = " ".join(t.get_text() for t in fig.texts)
    assert "18_lr=100: diverged before its first validation" in note and "20_lr=5: not started" in note


def test_a_monitored_loss_is_plotted_as_it_is(tmp_path, monkeypatch):
    from matplotlib.figure import Figure

    saved: list[Figure] = []
    monkeypatch.setattr(Figure, "savefig", lambda fig, *a, **k: saved.append(fig))
    plot([(row("0_hidden=2"), {0: 0.3, 1: 0.2}), (row("1_hidden=50", "diverged"), {0: 0.2})], Path("x.png"),
         monitor="val/loss", mode="min")  # fmt: skip
    ax = saved[0].axes[0]
    assert ax.get_ylabel() == "val/loss" and [line.get_linestyle() for line in ax.get_lines()] == ["-", "--"]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["0_hidden=2", "1_hidden=50 (diverged)"]


def fake_run(losses: list[float], initial: float | None) -> SimpleNamespace:
    guard = SimpleNamespace(initial_loss=initial)
    return SimpleNamespace(model=SimpleNamespace(train_losses=losses), trainer=SimpleNamespace(callbacks=[guard]))


def test_runs_that_do_not_learn_are_named():
    cfg = OmegaConf.create({})
    assert no_learning(cfg, fake_run([0.3, 0.1], 2.3), {"val/acc": 0.9}) is None
    assert "at chance" in no_learning(cfg, fake_run([0.3, 0.1], 2.3), {"val/acc": CHANCE})
    assert "above its start (2.3)" in no_learning(cfg, fake_run([2.5, 63710.0], 2.3), {"val/acc": 0.5})
    # no divergence guard: the first epoch's loss is the start; a curve fit has no accuracy
    assert "above its start" in no_learning(cfg, fake_run([0.2, 0.3], None), {"val/loss": 0.3})
    assert no_learning(cfg, fake_run([], None), {"epoch": 0}) is None
