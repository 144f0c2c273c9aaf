"""How fast the lab trains, against a hand-written PyTorch loop on the same data, model, mini-batch and update rule.

    NNDL_DATA_DIR=../shared/mnist python scripts/bench.py                 # every case, 5 pairs each
    NNDL_DATA_DIR=../shared/mnist python scripts/bench.py --cases mlp_ch1 --repeats 5
    NNDL_DATA_DIR=../shared/mnist python scripts/bench.py --speedrun-seeds 1 2 3

Each case runs in a fresh process which alternates, for each repetition, one training epoch of the bare loop of
the book's equations (``nndl.reference.bp_epoch``: BP1–BP4 and the SGD update in place; the MLP cases with
sigmoid hidden neurons and plain SGD), one of the autograd hand loop (``nndl.reference.autograd_epoch``: forward,
cost, backward, the torch optimizer's step) and one of the project's real path: the config that
``scripts/train.py`` composes, built by ``nndl.build.build_run`` (same data module, model, Trainer, logger and
callbacks), fitted for one epoch. Times are the training epoch alone (validation is reported separately); the
ratios are the medians over the repetitions of project / bare and project / autograd loop, each repetition's
epochs run back to back. Peak memory is that of another fresh process that
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
    "cnn_ch6_relu": Case(
        "CNN of ch. 6 (ch6_relu): 2 conv-pool ReLU, fc 100, SGD η=0.03, mini-batch 10", ("experiment=ch6_relu",)
    ),
    "cnn_ch6_relu_autograd": Case(
        "the same, `model.backprop=autograd` (without the CNN's fast path)",
        ("experiment=ch6_relu", "model.backprop=autograd"),
    ),
}


def reference_epoch(cfg, images, labels) -> float:
    """One epoch of the loop everybody writes first (``nndl.reference.autograd_epoch``): preloaded float tensors,
    a fresh permutation, and per mini-batch forward, cost, backward and the torch optimizer's step, in fp32 and
    PyTorch's default memory layout (the project's channels-last CNN is its own speed-up). Returns its wall time
    in seconds."""
    import torch

    from nndl.build import build, build_model
    from nndl.reference import autograd_epoch

    x_all = images.unsqueeze(1).float().div(255)
    cfg = cfg.copy()
    if "channels_last" in cfg.model:
        cfg.model.channels_last = False
    model, cost = build_model(cfg), build(cfg.cost)
    model.set_training_set(len(labels), -(-len(labels) // cfg.data.batch_size))  # L2's n, a schedule's length
    optimizer = model.configure_optimizers()
    start = time.perf_counter()
    autograd_epoch(model, cost, x_all, labels, torch.randperm(len(labels)), cfg.data.batch_size, optimizer)
    return time.perf_counter() - start


def bare_applies(cfg) -> bool:
    """Whether ``nndl.reference.bp_epoch`` trains this case: an MLP with sigmoid hidden neurons and plain SGD."""
    return (
        cfg.model._target_ == "nndl.models.MLP"
        and cfg.activation._target_ == "torch.nn.Sigmoid"
        and cfg.optimizer._target_ == "torch.optim.SGD"
        and not cfg.optimizer.get("momentum")
        and not cfg.optimizer.get("weight_decay")
        and not cfg.model.l2
        and not cfg.model.dropout
        and not cfg.get("scheduler")
    )


def bare_epoch(cfg, images, labels) -> float:
    """One epoch of the bare loop (``nndl.reference.bp_epoch``): feed-forward, BP1–BP4 and the SGD update in
    place, no autograd, no optimizer object, on preloaded float tensors; the same network, initialisation and
    learning rate as the project. Returns its wall time in seconds."""
    import torch

    from nndl.build import build, build_model
    from nndl.reference import bp_epoch

    x_all = images.flatten(1).float().div(255)
    model, cost = build_model(cfg), build(cfg.cost)
    weights = [layer.weight.detach().clone() for layer in model.layers]
    biases = [layer.bias.detach().clone() for layer in model.layers]
    start = time.perf_counter()
    bp_epoch(weights, biases, cost, x_all, labels, torch.randperm(len(labels)), cfg.data.batch_size, cfg.optimizer.lr)
    return time.perf_counter() - start


def project_epoch(cfg) -> dict[str, float]:
    """One epoch of the project's own path; the EpochTimer callback reports its training and validation time."""
    from nndl.build import build_run

    run = build_run(cfg)
    run.trainer.fit(run.model, datamodule=run.datamodule)
    metrics = run.trainer.callback_metrics
    return {"train_s": float(metrics["time/train_s"]), "val_s": float(metrics["time/val_s"])}


THREADS: list[str] = []  # ["threads=N"] with --threads N: the project's torch threads, as the reference loops'


def case_config(name: str, run_dir: str):
    from nndl.config import compose

    overrides = [*CASES[name].overrides, "trainer.max_epochs=1", "trainer.enable_progress_bar=false", *THREADS]
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
        bare, reference, project, validation = [], [], [], []
        for _ in range(repeats):
            if bare_applies(cfg):
                bare.append(bare_epoch(cfg, images, labels))
            reference.append(reference_epoch(cfg, images, labels))
            times = project_epoch(cfg)
            project.append(times["train_s"])
            validation.append(times["val_s"])
    steps = -(-len(labels) // cfg.data.batch_size)
    return {
        "name": name,
        "bare": bare,
        "reference": reference,
        "project": project,
        "val": validation,
        "steps": steps,
    }


def run_child(args: list[str]) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        own = [line for line in out.stderr.splitlines() if line.startswith("error: ")]
        sys.exit(own[-1] if own else f"bench {' '.join(args)} failed:\n{out.stderr[-3000:]}")
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


def train_time(*overrides: str) -> float:
    """``train_time_s`` of one ``scripts/train.py`` run with ``overrides`` (its training epochs only)."""
    with tempfile.TemporaryDirectory(prefix="nndl-bench-") as tmp:
        subprocess.run(
            [sys.executable, str(ROOT / "scripts" / "train.py"), *overrides, f"hydra.run.dir={tmp}",
             "trainer.enable_progress_bar=false"],
            capture_output=True, check=True,
        )  # fmt: skip
        return json.loads((Path(tmp) / "metrics.json").read_text())["train_time_s"]


def data_parallel(repeats: int) -> None:
    """The notes' CNN, one epoch of 10,000 images: 2 processes of 1 thread (trainer=ddp) against 1 process of 2."""
    cnn = ["model=cnn", "data.train_size=10000", "trainer.max_epochs=1"]
    ddp, alone = [], []
    for _ in range(repeats):  # alternated, so that both see the machine alike
        ddp.append(train_time(*cnn, "trainer=ddp", "trainer.devices=2", "threads=1"))
        alone.append(train_time(*cnn, "threads=2"))
    print(f"\nCNN epoch of 10,000 images ({cpu_description()}): 2 processes × 1 thread (trainer=ddp) "
          f"{_median(ddp)} s, 1 process × 2 threads {_median(alone)} s; ratio {_ratios(ddp, alone)}")  # fmt: skip


def cpu_description() -> str:
    """The CPU's model name and which of the flags that decide the speed of the arithmetic it has."""
    try:
        info = Path("/proc/cpuinfo").read_text()
    except OSError:
        return "CPU unknown"
    model = next((line.split(":", 1)[1].strip() for line in info.splitlines() if line.startswith("model name")), "?")
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    shown = ["avx2", "fma", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]
    return f"{model}, flags: {' '.join(f for f in shown if f in flags) or 'none of ' + ', '.join(shown)}"


def _median(times: list[float]) -> str:
    return f"{statistics.median(times):.2f}" if times else "—"


def _ratios(project: list[float], reference: list[float]) -> str:
    """project / reference for each repetition (each pair run back to back), their median first."""
    if not reference:
        return "—"
    ratios = [p / r for p, r in zip(project, reference, strict=True)]
    return f"{statistics.median(ratios):.3f} ({', '.join(f'{r:.2f}' for r in ratios)})"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from {', '.join(CASES)}")
    parser.add_argument("--repeats", type=int, default=5, help="repetitions (bare, autograd loop, project) per case")
    parser.add_argument("--speedrun-seeds", type=int, nargs="*", default=[1, 2, 3], help="seeds of experiment=speedrun")
    parser.add_argument("--threads", type=int, help="torch threads of every loop (default: torch's, all cores)")
    parser.add_argument("--ddp", type=int, default=0, metavar="N", help="N pairs of the data-parallel CNN comparison")
    parser.add_argument("--case", help=argparse.SUPPRESS)  # internal: run one case in this process
    parser.add_argument("--rss", action="store_true", help=argparse.SUPPRESS)  # internal: the case's memory
    args = parser.parse_args()
    unknown = [name for name in args.cases.split(",") if name not in CASES]
    if unknown:
        parser.error(f"--cases: unknown {', '.join(unknown)}; choose from {', '.join(CASES)}")
    for flag, value, least in (("--repeats", args.repeats, 1), ("--threads", args.threads, 1), ("--ddp", args.ddp, 0)):
        if value is not None and value < least:
            parser.error(f"{flag} {value} is out of range: it must be an integer ≥ {least}")
    if any(seed < 0 for seed in args.speedrun_seeds):
        parser.error(f"--speedrun-seeds {args.speedrun_seeds}: seeds are integers ≥ 0")
    threads = ["--threads", str(args.threads)] if args.threads else []
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
        THREADS.append(f"threads={args.threads}")
    if args.case:
        from nndl.errors import NNDLError

        try:
            print(json.dumps(peak_rss(args.case) if args.rss else bench_case(args.case, args.repeats)))
        except NNDLError as err:  # bad data or config: one line, which the parent passes on
            sys.exit(f"error: {err}")
        return

    import torch

    print(f"{cpu_description()}; torch {torch.__version__}, {torch.get_num_threads()} threads, {os.cpu_count()} CPUs; "
          f"data {os.environ.get('NNDL_DATA_DIR', 'data/')}\n")  # fmt: skip
    print("| case | bare BP1–BP4 s/epoch | autograd loop s/epoch | project s/epoch | project / bare (median, all) "
          "| project / autograd loop (median, all) | project steps/s | validation s | peak RSS |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|")
    for name in args.cases.split(","):
        result = run_child(["--case", name, "--repeats", str(args.repeats), *threads])
        result |= run_child(["--case", name, "--rss", *threads])
        project = statistics.median(result["project"])
        print(
            f"| {CASES[name].title} | {_median(result['bare'])} | {_median(result['reference'])} | {project:.2f} "
            f"| {_ratios(result['project'], result['bare'])} | {_ratios(result['project'], result['reference'])} "
            f"| {result['steps'] / project:,.0f} | {statistics.median(result['val']):.2f} "
            f"| {result['peak_rss_mb']:,.0f} MB |",
            flush=True,
        )
    print(f"\nStart-up: `train.py --help` {startup_seconds('--help'):.2f} s, "
          f"`train.py --cfg job` {startup_seconds('--cfg', 'job'):.2f} s")  # fmt: skip
    if args.ddp:
        data_parallel(args.ddp)
    if args.speedrun_seeds:
        runs = [speedrun(seed) for seed in args.speedrun_seeds]
        times = [r["train_time_s"] for r in runs]
        accs = [r["test/acc"] for r in runs]
        print(f"\n`experiment=speedrun` ({cpu_description()}), seeds {args.speedrun_seeds}: training time "
              f"{', '.join(f'{t:.1f}' for t in times)} s (median {statistics.median(times):.1f} s); test/acc "
              f"{', '.join(f'{a:.4f}' for a in accs)} (median {statistics.median(accs):.4f})")  # fmt: skip


if __name__ == "__main__":
    main()
