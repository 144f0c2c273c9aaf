"""How fast the lab trains, against a hand-written PyTorch loop on the same data, model, mini-batch and update rule.

    NNDL_DATA_DIR=../shared/mnist python scripts/bench.py                 # every case, 5 pairs each
    NNDL_DATA_DIR=../shared/mnist python scripts/bench.py --cases mlp_ch1 --repeats 5
    NNDL_DATA_DIR=../shared/mnist python scripts/bench.py --speedrun-seeds 1 2 3

Each case runs in a fresh process which alternates, for each repetition, one training epoch of the reference
loop and one of the project's real path: the config that
``scripts/train.py`` composes, built by ``nndl.build.build_run`` (same data module, model, Trainer, logger and
callbacks), fitted for one epoch. Times are the training epoch alone (validation is reported separately); the
ratio is the median over the pairs of project / reference. Peak memory is that of another fresh process that
runs one epoch of the project's path alone. Prints a Markdown table.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
os.environ.setdefault("PROJECT_ROOT", str(ROOT))


@dataclass(frozen=True)
class Case:
    title: str
    overrides: tuple[str, ...]


CASES = {
    "mlp_ch1": Case("MLP [784,30,10] sigmoid, quadratic, SGD η=3, mini-batch 10 (book ch. 1)", ()),
    "cnn_notes": Case("CNN of the notes, log-likelihood, Adam 1e-3, mini-batch 50", ("model=cnn", "optimizer=adam")),
    "mlp_ch3": Case(
        "MLP [784,100,10] sigmoid, cross-entropy, SGD η=0.5, mini-batch 10 (book ch. 3)",
        ("model.sizes=[784,100,10]", "model.init=default", "cost=cross_entropy", "optimizer.lr=0.5"),
    ),
}


def reference_epoch(cfg, images, labels) -> float:
    """One epoch of the loop everybody writes first: preloaded float tensors, a fresh permutation, and per
    mini-batch forward, cost, backward and optimizer step, in fp32 and PyTorch's default memory layout (the
    project's channels-last CNN is its own speed-up). Returns its wall time in seconds."""
    import torch

    from nndl.build import build, build_model

    x_all, y_all = images.unsqueeze(1).float().div(255), labels
    cfg = cfg.copy()
    if "channels_last" in cfg.model:
        cfg.model.channels_last = False
    model, cost = build_model(cfg), build(cfg.cost)
    optimizer = model.configure_optimizers()
    batch_size = cfg.data.batch_size
    start = time.perf_counter()
    order = torch.randperm(len(y_all))
    for k in range(0, len(order), batch_size):
        index = order[k : k + batch_size]
        loss = cost(model(x_all[index]), y_all[index])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def project_epoch(cfg) -> dict[str, float]:
    """One epoch of the project's own path; the EpochTimer callback reports its training and validation time."""
    from nndl.build import build_run

    run = build_run(cfg)
    run.trainer.fit(run.model, datamodule=run.datamodule)
    metrics = run.trainer.callback_metrics
    return {"train_s": float(metrics["time/train_s"]), "val_s": float(metrics["time/val_s"])}


def case_config(name: str, run_dir: str):
    from nndl.config import compose

    overrides = [*CASES[name].overrides, "trainer.max_epochs=1", "trainer.enable_progress_bar=false"]
    return compose(ROOT / "conf", overrides, run_dir)


def peak_rss(name: str) -> dict:
    """Runs in its own process: one epoch of the project's path alone, and this process's peak memory."""
    with tempfile.TemporaryDirectory(prefix="nndl-bench-") as tmp:
        project_epoch(case_config(name, tmp))
    return {"peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def bench_case(name: str, repeats: int) -> dict:
    """Runs in its own process: the alternating pairs of one case."""
    from nndl.build import build

    with tempfile.TemporaryDirectory(prefix="nndl-bench-") as tmp:
        cfg = case_config(name, tmp)
        datamodule = build(cfg.data)  # the training split as the project reads it, for the reference too
        datamodule.prepare_data()
        datamodule.setup("fit")
        images, labels = datamodule.train_data
        reference, project, validation = [], [], []
        for _ in range(repeats):
            reference.append(reference_epoch(cfg, images, labels))
            times = project_epoch(cfg)
            project.append(times["train_s"])
            validation.append(times["val_s"])
    steps = -(-len(labels) // cfg.data.batch_size)
    return {
        "name": name,
        "reference": reference,
        "project": project,
        "val": validation,
        "steps": steps,
    }


def run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        sys.exit(f"bench {' '.join(args)} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def startup_seconds(*args: str) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, str(ROOT / "scripts" / "train.py"), *args], capture_output=True, check=True)
    return time.perf_counter() - start


def speedrun(seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="nndl-speedrun-") as tmp:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "train.py"), "experiment=speedrun", f"seed={seed}",
             f"hydra.run.dir={tmp}", "trainer.enable_progress_bar=false"],
            capture_output=True, check=True,
        )  # fmt: skip
        return json.loads((Path(tmp) / "metrics.json").read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=5, help="pairs of epochs per case")
    parser.add_argument("--speedrun-seeds", type=int, nargs="*", default=[1, 2, 3], help="seeds of experiment=speedrun")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    parser.add_argument("--rss", action="store_true", help=argparse.SUPPRESS)  # internal: the case's memory
    args = parser.parse_args()
    if args.case:
        print(json.dumps(peak_rss(args.case) if args.rss else bench_case(args.case, args.repeats)))
        return

    import torch

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"data {os.environ.get('NNDL_DATA_DIR', 'data/')}\n")  # fmt: skip
    print("| case | reference s/epoch | project s/epoch | ratio (median of pairs) | project steps/s "
          "| validation s | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|")
    for name in args.cases.split(","):
        result = run_child(["--case", name, "--repeats", str(args.repeats)]) | run_child(["--case", name, "--rss"])
        ratios = [p / r for p, r in zip(result["project"], result["reference"], strict=True)]
        project = statistics.median(result["project"])
        print(
            f"| {CASES[name].title} | {statistics.median(result['reference']):.2f} | {project:.2f} "
            f"| {statistics.median(ratios):.3f} ({', '.join(f'{r:.2f}' for r in ratios)}) "
            f"| {result['steps'] / project:,.0f} | {statistics.median(result['val']):.2f} "
            f"| {result['peak_rss_mb']:,.0f} MB |",
            flush=True,
        )
    print(f"\nStart-up: `train.py --help` {startup_seconds('--help'):.2f} s, "
          f"`train.py --cfg job` {startup_seconds('--cfg', 'job'):.2f} s")  # fmt: skip
    if args.speedrun_seeds:
        runs = [speedrun(seed) for seed in args.speedrun_seeds]
        times = [r["train_time_s"] for r in runs]
        accs = [r["test/acc"] for r in runs]
        print(f"\n`experiment=speedrun`, seeds {args.speedrun_seeds}: training time "
              f"{', '.join(f'{t:.1f}' for t in times)} s (median {statistics.median(times):.1f} s); test/acc "
              f"{', '.join(f'{a:.4f}' for a in accs)} (median {statistics.median(accs):.4f})")  # fmt: skip


if __name__ == "__main__":
    main()
