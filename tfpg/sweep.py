"""Seeds × a hyperparameter grid on Ray Tune, each trial a normal tfpg run directory.

    python -m tfpg.sweep --algo=ppo --envs=Hopper-v5 --seeds=0,1,2 --steps=1000000 \
        --grid=learning_rate=1e-4,3e-4 --grid=clip_ratio=0.1,0.2 --outdir=runs/ppo-sweep

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

Trials collect in their own process (one CPU each by default) on the Ray cluster
of `--ray_address` (unset: a local Ray instance on this machine's cores). Needs
`pip install "tfpg[ray]"`.
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import sys

from absl import app, flags

from tfpg import ALGORITHMS
from tfpg.envs import check_env_id
from tfpg.ray_cluster import connect, import_ray
from tfpg.run_summary import markdown_table, plot_curves, read_run
from tfpg.sweep_trial import tfpg_trial

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
flags.mark_flag_as_required("outdir")
FLAGS = flags.FLAGS

@dataclasses.dataclass(frozen=True)
class Trial:
    """One run of the sweep: an env, a configuration (hyperparameter name → value) and a seed."""

    env: str
    configuration: tuple
    seed: int

    @property
    def configuration_name(self) -> str:
        """`name=value,...` of the grid values, or "defaults"."""
        return ",".join(f"{name}={_format(value)}" for name, value in self.configuration) or "defaults"

    def logdir(self, outdir: str) -> str:
        """`<outdir>/<env>/<configuration>/seed<k>`, or `<outdir>/<env>/seed<k>` without a grid (the env id's
        slashes become underscores)."""
        configuration = [self.configuration_name] if self.configuration else []
        return os.path.join(outdir, self.env.replace("/", "_").replace(":", "_"), *configuration, f"seed{self.seed}")


def _format(value) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def parse_grid(entries: list[str], algorithm: str) -> dict[str, list]:
    """Grid entries `name=v1,v2` as typed values, checked against the algorithm's hyperparameters.

    Raises:
        ValueError: an entry is malformed, names no hyperparameter of the algorithm, or a value is invalid.
    """
    config_class = ALGORITHMS[algorithm].config_class
    fields = {field.name: field for field in dataclasses.fields(config_class)}
    grid = {}
    for entry in entries:
        name, separator, values = entry.partition("=")
        if not separator or not values:
            raise ValueError(f"--grid={entry!r} must be name=value1,value2,...")
        if name not in fields:
            raise ValueError(f"--grid names {name!r}, which is not a hyperparameter of {algorithm}; its "
                             f"hyperparameters are: {', '.join(sorted(fields))}.")
        if name in grid:
            raise ValueError(f"--grid gives {name!r} twice; list all its values in one entry.")
        grid[name] = [_parse_value(fields[name], text, name) for text in values.split(",")]
        for value in grid[name]:
            config_class.from_kwargs(**{name: value})  # the config's own range checks
    return grid


def _parse_value(field: dataclasses.Field, text: str, name: str):
    default = field.default
    try:
        if isinstance(default, bool):
            if text.lower() not in ("true", "false"):
                raise ValueError
            return text.lower() == "true"
        if isinstance(default, int):
            return int(text)
        if isinstance(default, float):
            return float(text)
        if isinstance(default, tuple):
            return tuple(int(part) for part in text.split("x")) if text else ()
    except ValueError:
        raise ValueError(f"--grid value {text!r} of {name} is not a {type(default).__name__}"
                         f"{' (integers joined by x, e.g. 64x64)' if isinstance(default, tuple) else ''}.") from None
    return text


def trials(envs: list[str], grid: dict[str, list], seeds: list[int]) -> list[Trial]:
    """Every combination of env, grid values and seed, in that order of nesting."""
    names = list(grid)
    combinations = list(itertools.product(*(grid[name] for name in names)))
    return [Trial(env, tuple(zip(names, values)), seed)
            for env in envs for values in combinations for seed in seeds]


def launcher_command(trial: Trial, algorithm: str, steps: int, logdir: str, extra: list[str]) -> list[str]:
    """The `tfpg.train` command of a trial: a new run, or `--resume` if its directory holds checkpoints."""
    command = [sys.executable, "-m", "tfpg.train", f"--algo={algorithm}", f"--env={trial.env}",
               f"--steps={steps}", f"--logdir={logdir}", "--verbose=0"]
    checkpoints = os.path.join(logdir, "checkpoints")
    if os.path.isdir(checkpoints) and os.listdir(checkpoints):
        return command + ["--resume"]
    hyperparameters = [f"--{name}={','.join(map(str, value)) if isinstance(value, tuple) else value}"
                       for name, value in trial.configuration]
    return command + [f"--seed={trial.seed}", *hyperparameters, *extra]


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
        import_ray()
        from ray import tune
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    except ImportError:
        raise app.UsageError("tfpg.sweep needs Ray Tune: pip install 'tfpg[ray]'.") from None
    outdir = os.path.abspath(FLAGS.outdir)
    planned = trials(FLAGS.envs, grid, seeds)
    try:
        connect(FLAGS.ray_address)
    except (ConnectionError, ValueError) as error:
        raise app.UsageError(str(error)) from None
    os.makedirs(outdir, exist_ok=True)
    plans = {os.path.relpath(trial.logdir(outdir), outdir): {
        "logdir": trial.logdir(outdir), "cwd": os.getcwd(),
        "command": launcher_command(trial, FLAGS.algo, FLAGS.steps, trial.logdir(outdir), FLAGS.extra)}
        for trial in planned}
    trainable = tune.with_resources(tune.with_parameters(tfpg_trial, plans=plans), {"cpu": FLAGS.cpus_per_trial})
    tuner = tune.Tuner(trainable, param_space={"run": tune.grid_search(list(plans))},
                       run_config=tune.RunConfig(name="tune", storage_path=os.path.join(outdir, "_tune"),
                                                 verbose=1))
    results = tuner.fit()
    failed = [result for result in results if result.error is not None]
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
    if failed:
        print(f"{len(failed)} of {len(planned)} trials failed; their logs are next to their run directories "
              f"(<run>.log). Run the same command again to retry them.", file=sys.stderr)
        sys.exit(1)


def run():
    """Console entry point."""
    app.run(main)


if __name__ == "__main__":
    run()
