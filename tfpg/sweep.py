"""Seeds × a hyperparameter grid on Ray Tune, each trial a normal tfpg run directory.

    python -m tfpg.sweep --algo=ppo --envs=Hopper-v5 --seeds=0,1,2 --steps=1000000 \
        --grid=learning_rate=1e-4,3e-4 --grid=clip_range=0.1,0.2 --outdir=runs/ppo-sweep

Every combination of env, grid values and seed is one Tune trial, which runs
`python -m tfpg.train` in `<outdir>/<env>/<configuration>/seed<k>` (without
`--grid`: `<outdir>/<env>/seed<k>`, the layout of `benchmarks/returns.py`) and reports
the rows of its `progress.csv` to Tune as they are written, then the final
deterministic evaluation (`eval_mean_return`). Run the same command again to
continue an interrupted sweep: finished trials are skipped and the others resume
from their checkpoints (each directory also resumes by hand with `tfpg.train
--resume`). At the end, `<outdir>/summary.md` holds the final returns per
configuration (mean, median and std over seeds) and `<outdir>/curves.png` the
learning curves (mean and min-max over seeds), one panel per env.

With `--search` instead of `--grid`, Optuna samples `--search_trials`
configurations of one env (e.g. `--search=learning_rate=loguniform:1e-5:1e-3`);
each trial runs its configuration for every seed, one run directory each, and
reports the mean final return, which Optuna maximises (needs `pip install "tfpg[ray]"`, which includes it).

Trials collect in their own process (one CPU each by default) on the Ray cluster
of `--ray_address` (unset: a local Ray instance on this machine's cores). Needs
`pip install "tfpg[ray]"`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys

from absl import app, flags

from tfpg import ALGORITHMS
from tfpg.envs import check_env_id
from tfpg.launcher import run_program
from tfpg.ray_cluster import connect, import_ray
from tfpg.run_summary import markdown_table, plot_curves, read_run
from tfpg.sweep_plan import SEARCH_KINDS, Trial, check_extra, launcher_command, parse_grid, parse_search, trials
from tfpg.sweep_trial import search_trial, tfpg_trial

flags.DEFINE_enum("algo", "ppo", sorted(ALGORITHMS), "Algorithm.")
flags.DEFINE_list("envs", ["Hopper-v5"], "Gymnasium ids.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds (non-negative integers).")
flags.DEFINE_integer("steps", 1_000_000, "Env steps per trial.", lower_bound=1)
flags.DEFINE_multi_string("grid", [], "A hyperparameter and its values, name=v1,v2 (lists of integers as 64x64); "
                          "repeat for more. Every combination is run.")
flags.DEFINE_string("outdir", None, "Directory of the sweep's runs and summary.")
flags.DEFINE_multi_string("extra", [], "Further tfpg.train flags for every trial, e.g. --extra=--num_envs=1.")
flags.DEFINE_float("cpus_per_trial", 1.0, "CPUs each trial reserves.", lower_bound=0.01)
flags.DEFINE_string("ray_address", None, "Ray cluster to join (host:port or 'auto'); unset: a local instance.")
flags.DEFINE_multi_string("search", [], "Instead of --grid: a hyperparameter to search with Optuna, as name=kind:args, "
                          f"kind one of {', '.join(SEARCH_KINDS)} (learning_rate=loguniform:1e-5:1e-3, "
                          "epochs=int:3:10, activation=choice:tanh,relu); repeat for more.")
flags.DEFINE_integer("search_trials", 20, "With --search: configurations Optuna samples (each run for every seed).",
                     lower_bound=1)
flags.DEFINE_integer("search_seed", 0, "With --search: seed of Optuna's sampler (the same seed samples the same "
                     "configurations, so a rerun continues).", lower_bound=0)
flags.mark_flag_as_required("outdir")
FLAGS = flags.FLAGS

def _search_space(tune, space: dict) -> dict:
    makers = {"uniform": tune.uniform, "loguniform": tune.loguniform, "int": lambda low, high: tune.randint(low, high + 1),
              "choice": lambda *values: tune.choice(list(values))}
    return {name: makers[kind](*values) for name, (kind, values) in space.items()}


def _tuner(tune, outdir: str, seeds: list[int], grid: dict, space: dict):
    """The Tune run and the trials it will make (None for a search: those are sampled)."""
    run_config = tune.RunConfig(name="tune", storage_path=os.path.join(outdir, "_tune"), verbose=1)
    resources = {"cpu": FLAGS.cpus_per_trial}
    if space:
        from ray.tune.search.optuna import OptunaSearch

        context = {"env": FLAGS.envs[0], "seeds": seeds, "algo": FLAGS.algo, "steps": FLAGS.steps,
                   "outdir": outdir, "extra": FLAGS.extra, "cwd": os.getcwd()}
        searcher = OptunaSearch(metric="eval_mean_return", mode="max", seed=FLAGS.search_seed)
        trainable = tune.with_resources(tune.with_parameters(search_trial, context=context), resources)
        return tune.Tuner(trainable, param_space=_search_space(tune, space), run_config=run_config,
                          tune_config=tune.TuneConfig(search_alg=searcher, num_samples=FLAGS.search_trials)), None
    planned = trials(FLAGS.envs, grid, seeds)
    plans = {os.path.relpath(trial.logdir(outdir), outdir): {
        "logdir": trial.logdir(outdir), "cwd": os.getcwd(),
        "command": launcher_command(trial, FLAGS.algo, FLAGS.steps, trial.logdir(outdir), FLAGS.extra)}
        for trial in planned}
    trainable = tune.with_resources(tune.with_parameters(tfpg_trial, plans=plans), resources)
    return tune.Tuner(trainable, param_space={"run": tune.grid_search(list(plans))}, run_config=run_config), planned


def _check_writable(outdir: str) -> None:
    """Raises a `UsageError` if `outdir` could not be created or written, without creating anything."""
    existing = outdir
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing) or not os.access(existing, os.W_OK | os.X_OK):
        what = "is a file" if not os.path.isdir(existing) else "cannot be written"
        raise app.UsageError(f"Cannot write the sweep into --outdir={FLAGS.outdir!r}: {existing} {what}. Choose a "
                             f"directory you can write to.")


def _check_trial_resources(cpus_per_trial: float) -> None:
    """Raises a `ValueError` if no node of the cluster has the CPUs one trial reserves (Tune would wait forever)."""
    import ray

    node_cpus = [node["Resources"].get("CPU", 0.0) for node in ray.nodes() if node.get("Alive")]
    if not node_cpus or max(node_cpus) < cpus_per_trial:
        raise ValueError(f"--cpus_per_trial={cpus_per_trial:g}, but the largest node of the Ray cluster has "
                         f"{max(node_cpus, default=0.0):g} CPUs, so no trial could ever start; lower "
                         f"--cpus_per_trial or join a cluster with larger nodes (--ray_address).")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    try:
        for env in FLAGS.envs:
            check_env_id(env)
        seeds = [int(seed) for seed in FLAGS.seeds]
        if any(seed < 0 for seed in seeds) or len(set(seeds)) != len(seeds):
            raise ValueError(f"--seeds must be distinct non-negative integers, got {FLAGS.seeds}.")
        grid = parse_grid(FLAGS.grid, FLAGS.algo)
        space = parse_search(FLAGS.search, FLAGS.algo)
        check_extra(FLAGS.extra, [*grid, *space])
        if space and (grid or len(FLAGS.envs) > 1):
            raise ValueError("--search optimises one env's mean final return over the seeds; give one --envs and "
                             "no --grid with it.")
        import_ray()
        from ray import tune
        if space and importlib.util.find_spec("optuna") is None:
            raise ImportError("No module named 'optuna'")
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    except ImportError as error:
        raise app.UsageError(f"tfpg.sweep needs Ray Tune{' and Optuna' if FLAGS.search else ''} ({error}): "
                             f"pip install 'tfpg[ray]'.") from None
    outdir = os.path.abspath(FLAGS.outdir)
    _check_writable(outdir)
    try:
        connect(FLAGS.ray_address)
        _check_trial_resources(FLAGS.cpus_per_trial)
    except (ConnectionError, ValueError) as error:
        raise app.UsageError(str(error)) from None
    try:
        os.makedirs(outdir, exist_ok=True)
    except OSError as error:
        raise app.UsageError(f"Cannot write the sweep into --outdir={FLAGS.outdir!r}: {error.strerror or error}. "
                             f"Choose a directory you can write to.") from None
    tuner, planned = _tuner(tune, outdir, seeds, grid, space)
    logging.getLogger("ray.tune.tune").addFilter(_drop_restore_advice)
    results = tuner.fit()
    failed = [result for result in results if result.error is not None]
    # a trial reports eval_mean_return once its runs have finished; Tune returns early only when stopped (Ctrl-C)
    unfinished = [result for result in results
                  if result.error is None and "eval_mean_return" not in (result.metrics or {})]
    if planned is None:  # the sampled configurations, each for every seed
        planned = [Trial(FLAGS.envs[0], tuple(sorted(result.config.items())), seed)
                   for result in results for seed in seeds]
    panels = {}
    for trial in planned:
        panels.setdefault(trial.env, {}).setdefault(trial.configuration_name, []).append(read_run(trial.logdir(outdir)))
    tables = [f"## {env}\n\n" + markdown_table(groups) for env, groups in panels.items()]
    summary = f"# {FLAGS.algo} sweep, {FLAGS.steps} steps per trial\n\n" + "\n\n".join(tables) + "\n"
    with open(os.path.join(outdir, "summary.md"), "w") as file:
        file.write(summary)
    plot_curves(panels, os.path.join(outdir, "curves.png"), title=f"{FLAGS.algo.upper()} ")
    print(summary)
    print(f"Summary: {os.path.join(outdir, 'summary.md')}\nCurves:  {os.path.join(outdir, 'curves.png')}")
    if unfinished:
        print(f"The sweep was stopped with {len(unfinished)} of {len(results)} trials unfinished; each run "
              f"directory keeps its checkpoints. Run the same command again to continue: finished trials are "
              f"skipped and the others resume.", file=sys.stderr)
        sys.exit(130)
    if failed:
        print(f"{len(failed)} of {len(results)} trials failed; their logs are next to their run directories "
              f"(<run>.log). Run the same command again to retry them.", file=sys.stderr)
        sys.exit(1)


def _drop_restore_advice(record: logging.LogRecord) -> bool:
    """A logging filter: drops Tune's advice to resume a stopped experiment with its Python API (a sweep resumes
    by running the same command again, as the sweep itself says)."""
    return "Tuner.restore" not in record.getMessage()


def run():
    """Console entry point."""
    run_program(main, ALGORITHMS)


if __name__ == "__main__":
    run()
