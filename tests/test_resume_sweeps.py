"""Resuming sweeps and Optuna searches (``resume=true``), and what a resumed run refuses (``resume=<run_dir>``)."""

import json

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
    reports = [json.loads(p.read_text()) for p in sweep.glob("*/metrics.json")]
    assert len(reports) == 3 and "interrupted" not in [r["status"] for r in reports]  # it resumed in its directory
