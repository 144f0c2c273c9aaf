"""What a resumed run takes from its directory's saved command line (``nndl.resume``): a run directory may come
from someone else, so each saved override may only choose among what the lab's ``conf/`` offers."""

from pathlib import Path

import pytest

from nndl.errors import ConfigError
from nndl.resume import resume_args


def run_dir(tmp_path: Path, *overrides: str) -> Path:
    (tmp_path / ".hydra").mkdir()
    (tmp_path / "checkpoints").mkdir()
    (tmp_path / "checkpoints" / "last.ckpt").write_bytes(b"")
    (tmp_path / ".hydra" / "overrides.yaml").write_text("".join(f"- {o!r}\n" for o in overrides))
    return tmp_path


@pytest.mark.parametrize(
    ("saved", "reason"),
    [
        ("+callbacks.evil={_target_: shutil.copyfile, src: /etc/hostname, dst: /tmp/x}", "a value with keys"),
        ("experiment=../../runs/evil/x/cb", "experiment must be one of the options in the lab's conf/experiment/"),
        ("activation@model.conv_activation=nope", "activation must be one of the options"),
        ("model._target_=os.system", "a Hydra key"),
        ("+callbacks.x._target_=os.system", "a Hydra key"),
        ("seed=${oc.env:HOME}", "an interpolation"),
        ("model.sizes=[[784],{a: 1}]", "a value with keys, or a list of lists"),
        ("optimizer.lr=choice(1,2)", "a sweep"),
        ("callbacks.last_checkpoint.dirpath=/tmp/elsewhere", "decides where the run reads or writes"),
        ("logger.save_dir=/tmp/elsewhere", "decides where the run reads or writes"),
        ("trainer.default_root_dir=/tmp/elsewhere", "decides where the run reads or writes"),
        ("callbacks.last_checkpoint.filename=../../x", "decides where the run reads or writes"),
        ("logger.tensorboard.version=../../escaped", "decides where the run reads or writes"),
        ("+logger.csv.name=../escaped", "decides where the run reads or writes"),
        ("+logger.run_id=0123abcd", "decides where the run reads or writes"),
        ("paths.log_dir=/tmp/elsewhere", "decides where the run reads or writes"),
        ("data.data_dir=/anywhere", "decides where the run reads or writes"),
        ("callbacks@hydra.callbacks=default", "a Hydra key"),
        ("+paths@hydra.run=default", "a Hydra key"),
        ("hydra.run.dir=/tmp/x; rm -rf", None),  # hydra keys are the run's own, never taken
    ],
)
def test_a_saved_override_that_is_not_the_labs_is_refused(tmp_path, saved, reason):
    run = run_dir(tmp_path, "model.sizes=[784,100,10]", saved)
    if reason is None:
        assert not any("rm -rf" in arg for arg in resume_args([f"resume={run}"]))
        return
    with pytest.raises(ConfigError) as refused:
        resume_args([f"resume={run}"])
    assert f"holds {saved!r}, which is not allowed in a resumed run: " in str(refused.value)
    assert reason in str(refused.value)


def test_the_labs_own_choices_are_composed_again(tmp_path):
    saved = [
        "experiment=ch6_dropout", "activation@model.conv_activation=tanh", "model.sizes=[784,100,10]",
        "monitor=val/loss", "~callbacks.early_stopping", "tags=[a,b]", "trainer.max_epochs=null", "logger=many",
    ]  # fmt: skip
    run = run_dir(tmp_path, *saved)
    args = resume_args([f"resume={run}", "trainer.max_epochs=60"])
    assert args[: len(saved) - 1] == [o for o in saved if o != "trainer.max_epochs=null"]
    assert "trainer.max_epochs=60" in args and f"hydra.run.dir='{run.resolve()}'" in args


def test_a_saved_place_to_write_is_taken_when_the_command_line_gives_it_again(tmp_path):
    run = run_dir(tmp_path, "logger=mlflow", "paths.log_dir=/srv/mlflow", "data.data_dir=/data/mnist")
    with pytest.raises(ConfigError, match=r"give it on the command line again: paths\.log_dir=/srv/mlflow"):
        resume_args([f"resume={run}"])
    given = [f"resume={run}", "paths.log_dir=/srv/mlflow", "data.data_dir=/data/mnist"]
    assert {"paths.log_dir=/srv/mlflow", "data.data_dir=/data/mnist"} <= set(resume_args(given))


@pytest.mark.parametrize(
    ("text", "status"),
    [
        (None, "unfinished"),
        ('{"status": "interrupted", "epochs": 2}', "interrupted"),
        ('{"best_epoch": 3}', "ok"),  # a report from before the status field
        ('{"status": "ok"', "unreadable"),  # cut short
        ("[1, 2]", "unreadable"),
        ('{"status": 3}', "unreadable"),
        ("\xff\xfe", "unreadable"),
    ],
)
def test_a_runs_report_is_read_whatever_it_holds(tmp_path, text, status):
    from nndl.resume import job_state, read_report

    (tmp_path / ".hydra").mkdir()
    if text is not None:
        (tmp_path / "metrics.json").write_bytes(text.encode("latin-1"))
    report = read_report(tmp_path)
    assert report["status"] == status
    if status == "unreadable":
        assert str(tmp_path / "metrics.json") in report["reason"]
    assert job_state(tmp_path)[0] == status


def test_a_runs_lock_tells_a_live_process_from_a_gone_one(tmp_path):
    import subprocess
    import sys

    from nndl.rundir import LOCK, running

    assert running(tmp_path) is None  # a run from before the lock: cannot be told
    holder = subprocess.Popen(
        [sys.executable, "-c", f"import fcntl,os,sys,time; fd=os.open({str(tmp_path / LOCK)!r}, os.O_CREAT|os.O_RDWR);"
         "fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert holder.stdout.readline().strip() == "held"
    assert running(tmp_path) is True
    holder.kill()
    holder.wait()
    assert running(tmp_path) is False


def test_a_file_system_without_locks_runs_unlocked(tmp_path, capsys):
    import errno
    from unittest import mock

    from nndl import rundir

    with mock.patch.object(rundir.fcntl, "flock", side_effect=OSError(errno.ENOLCK, "No locks available")):
        rundir.lock(tmp_path)  # goes on, with a warning, rather than calling every run "still going"
        assert rundir.running(tmp_path) is None
    assert "cannot be locked (No locks available)" in capsys.readouterr().err
