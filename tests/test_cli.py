"""nndl.cli, what every script does before Hydra reads its command line."""

from nndl.cli import quote_paths


def test_path_arguments_are_quoted_for_hydra_when_they_exist(tmp_path):
    job = tmp_path / "3_cost=quadratic,optimizer=sgd"
    job.mkdir()
    assert quote_paths([f"ckpt_path={job}", "inputs=[a.png,b.png]", "optimizer.lr=0.1,0.2", "ckpt_path=x,y"]) == [
        f"ckpt_path='{job}'", "inputs=[a.png,b.png]", "optimizer.lr=0.1,0.2", "ckpt_path=x,y",
    ]  # fmt: skip
