"""Resuming sweeps and Optuna searches (``resume=true``), and what a resumed run refuses (``resume=<run_dir>``)."""

import json
import shutil
from pathlib import Path

from cli import forget_killer, killed_after, train


def test_resume_refuses_what_would_change_the_experiment(shared_mnist, tmp_path):
    run = tmp_path / "run"
    (run / ".hydra").mkdir(parents=True)
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "last.ckpt").write_bytes(b"")
    (run / ".hydra" / "overrides.yaml").write_text("- model=cnn\n")
    result = train(shared_mnist, f"resume={run}", "optimizer.lr=0.1")
    assert result.returncode == 1
    assert "optimizer.lr=0.1 would change the experiment" in result.stderr and "Traceback" not in result.stderr
    (run / ".hydra" / "overrides.yaml").write_text("- model._target_=os.system\n")
    result = train(shared_mnist, f"resume={run}")
    assert result.returncode == 1 and "'model._target_=os.system', which is not allowed" in result.stderr


def test_an_interrupted_sweep_resumed_ends_with_every_job_once(shared_mnist, tmp_path):
    sweep = tmp_path / "sweep"
    args = ["-m", "optimizer.lr=0.5,1.0,2.0,3.0", "trainer.max_epochs=2", f"hydra.sweep.dir={sweep}"]
    killer = killed_after("epochs=1", "job=1")
    result = train(shared_mnist, *args, *killer)  # stopped during its second job, as a scheduler would stop it
    assert result.returncode == 143, result.stderr
    assert "Sweep of 4 runs: 1 ok, 1 interrupted, 2 not started" in result.stdout
    forget_killer(sweep / "multirun.yaml", *sweep.glob("*/.hydra/overrides.yaml"))
    first = json.loads(next(sweep.glob("0_*/metrics.json")).read_text())

    result = train(shared_mnist, *args, "resume=true")
    assert result.returncode == 0, result.stderr
    assert "Sweep of 4 runs: 4 ok" in result.stdout and "Job 0 ended ok already" in result.stdout
    assert json.loads(next(sweep.glob("0_*/metrics.json")).read_text()) == first  # kept, not run again
    rows = (sweep / "summary.csv").read_text().splitlines()[1:]
    assert len(rows) == 4 and all(",ok," in row for row in rows)
    assert "resume=" not in (sweep / "summary.md").read_text()


def test_an_interrupted_optuna_search_resumed_runs_only_the_missing_trials(shared_mnist, tmp_path):
    import optuna

    sweep = tmp_path / "search"
    args = ["-m", "hparams_search=mlp_optuna", "hydra.sweeper.n_trials=3", "trainer.max_epochs=2",
            f"hydra.sweep.dir={sweep}"]  # fmt: skip
    killer = killed_after("epochs=1", "job=1")
    assert train(shared_mnist, *args, *killer).returncode == 143
    forget_killer(*sweep.glob("*/.hydra/overrides.yaml"))

    result = train(shared_mnist, *args, "resume=true")
    assert result.returncode == 0, result.stderr
    study = optuna.load_study(study_name="mlp", storage=f"sqlite:///{sweep}/optuna.db")
    states = [t.state.name for t in study.trials]
    assert states.count("COMPLETE") == 3 and states.count("FAIL") == 1  # the interrupted trial, asked again
    tried = [tuple(sorted(t.params.items())) for t in study.trials if t.state.name == "COMPLETE"]
    assert len(set(tried)) == 3, tried  # the new trial is not the first one drawn again
    reports = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert len(reports) == 3 and "interrupted" not in [r["status"] for r in reports]  # it resumed in its directory
    other = train(shared_mnist, *args, "optimizer=adam", "resume=true")  # another experiment: not this search
    assert other.returncode == 1 and f"hydra.sweep.dir={sweep} holds the sweep of" in other.stderr


def test_a_refused_resume_leaves_the_run_as_it_was(shared_mnist, tmp_path):
    """A bad value or a bad last.ckpt stops a resume with one line, before anything is built: the run's report,
    records and saved command line stay as they were, and the run resumes with a good command."""
    base = tmp_path / "base"
    assert train(shared_mnist, "trainer.max_epochs=2", "logger=many", f"hydra.run.dir={base}").returncode == 0
    other = tmp_path / "other"
    cnn = ["model=cnn", "model.channels=[4]", "model.fc_sizes=[]", "trainer.max_epochs=1"]
    assert train(shared_mnist, *cnn, f"hydra.run.dir={other}").returncode == 0

    def state(run: Path) -> dict[str, bytes]:
        files = [run / "metrics.json", run / "metrics.csv", *run.glob("events.*"), *(run / ".hydra").glob("*")]
        return {file.name: file.read_bytes() for file in files if file.exists()}

    cases = {
        "fewer_epochs": (None, ["trainer.max_epochs=1"], "trainer.max_epochs=1 is out of range for resume: the run's"),
        "zero_epochs": (None, ["trainer.max_epochs=0"], "trainer.max_epochs=0 is out of range"),
        "truncated": (b"PK\x03\x04", [], "last.ckpt: not a checkpoint that can be loaded safely"),
        "another_network": (other / "checkpoints" / "last.ckpt", [], "last.ckpt does not fit the model of its config"),
        "killed_without_a_report": ("no metrics.json", ["trainer.max_epochs=1"], "trainer.max_epochs=1 is out of"),
    }
    for name, (checkpoint, args, message) in cases.items():
        run = Path(shutil.copytree(base, tmp_path / name))
        last = run / "checkpoints" / "last.ckpt"
        if checkpoint == "no metrics.json":  # as a run killed by SIGKILL leaves it
            (run / "metrics.json").unlink()
        elif isinstance(checkpoint, bytes):
            last.write_bytes(checkpoint)
        elif checkpoint is not None:
            shutil.copy(checkpoint, last)
        before = state(run)
        result = train(shared_mnist, f"resume={run}", *args)
        assert result.returncode == 1 and message in result.stderr, (name, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, name
        assert state(run) == before, name
    resumed = tmp_path / "fewer_epochs"
    assert train(shared_mnist, f"resume={resumed}", "trainer.max_epochs=3").returncode == 0
    assert json.loads((resumed / "metrics.json").read_text())["epochs"] == 3


def test_resume_auto_refuses_another_experiments_run(shared_mnist, tmp_path):
    """resume=auto (a requeued job) continues the run in its directory only if it is the same experiment."""
    run, sweep = tmp_path / "run", tmp_path / "sweep"
    assert train(shared_mnist, "trainer.max_epochs=1", f"hydra.run.dir={run}").returncode == 0
    before = (run / "metrics.json").read_bytes()
    result = train(shared_mnist, "trainer.max_epochs=1", "optimizer.lr=0.1", "resume=auto", f"hydra.run.dir={run}")
    assert result.returncode == 1 and f"hydra.run.dir={run} holds the run of" in result.stderr
    assert (run / "metrics.json").read_bytes() == before
    args = ["-m", "optimizer.lr=0.5,1.0", "trainer.max_epochs=1", f"hydra.sweep.dir={sweep}"]
    assert train(shared_mnist, *args).returncode == 0
    result = train(shared_mnist, *args[:2], "trainer.max_epochs=2", args[3], "resume=auto")
    assert result.returncode == 1 and f"hydra.sweep.dir={sweep} holds the sweep of" in result.stderr
