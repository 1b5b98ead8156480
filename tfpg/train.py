"""Train an agent from the command line.

    python -m tfpg.train --algo=a2c --env=CartPole-v1 --steps=200000 --seed=0 --logdir=runs/cartpole
    python -m tfpg.train --logdir=runs/cartpole --resume        # continue it with its own settings
    python -m tfpg.train --logdir=runs/cartpole --resume --steps=400000 --learning_rate=3e-4

The log directory receives `checkpoints/`, `tensorboard/`, `progress.csv`,
`learning_curve.png`, the exported `policy/` SavedModel and `run.json` (the env
and collection settings a resume reads, and what each launch changed). A resume
takes every setting from the run; a flag that contradicts it is refused by name,
except the step target, the collection flags and the step-size settings
(`tfpg.config.CHANGEABLE_ON_RESUME`), which are applied and recorded. It starts
from the newest checkpoint that loads, skipping damaged ones. Every hyperparameter
of every algorithm is a flag (see --helpfull); flags the chosen algorithm does
not have are refused. SIGINT and SIGTERM write a checkpoint before exiting.
"""

from __future__ import annotations

import fcntl
import math
import os
import signal
import sys

import tensorflow as tf
from absl import app, flags
from absl import logging as absl_logging

import tfpg
from tfpg import callbacks as tfpg_callbacks
from tfpg.checkpoint_files import checkpoint_prefixes, resolve
from tfpg.config import CHANGEABLE_ON_RESUME, describe_changes, resume_conflicts
from tfpg.envs import check_backend, check_env_id, make_env
from tfpg.errors import CheckpointWriteError, EnvError, EvaluationTimeout, NonFiniteError
from tfpg.inference import episode_summary
from tfpg.flags import define_hyperparameter_flags, hyperparameters_from_flags
from tfpg.launcher import run_program
from tfpg.loading import load, load_newest_intact
from tfpg.plotting import plot_learning_curve
from tfpg.ray_cluster import check_reachable, import_ray
from tfpg.run_record import RECORD_NAME, SETTINGS, read_run_record, updated_record, write_json, write_run_record

FLAGS = flags.FLAGS

flags.DEFINE_enum("algo", "a2c", sorted(tfpg.ALGORITHMS), "Algorithm to train.")
flags.DEFINE_string("env", "CartPole-v1", "Gymnasium environment id.")
flags.DEFINE_integer("steps", 200_000, "Total environment steps of the run (a resumed run continues to it).",
                     lower_bound=1)
flags.DEFINE_integer("seed", 0, "Seed of TensorFlow, the envs and action sampling.", lower_bound=0)
flags.DEFINE_integer("num_envs", None, "Parallel env copies (unset: the algorithm's default, 8 for A2C and 1 for "
                     "the others; a resumed run keeps its own).", lower_bound=1)
flags.DEFINE_boolean("async_envs", False, "Step the env copies in subprocesses.")
flags.DEFINE_enum("vector_env", "gymnasium", ["gymnasium", "envpool"], "What steps the env copies: Gymnasium's vector "
                  "env, or EnvPool's C++ threads (MuJoCo and Atari ids; needs tfpg[envpool]).")
flags.DEFINE_integer("num_workers", 0, "Ray workers collecting experience (0: collect in this process); needs "
                     "tfpg[ray].", lower_bound=0)
flags.DEFINE_integer("envs_per_worker", 8, "Env copies of each Ray worker (with --num_workers).", lower_bound=1)
flags.DEFINE_string("ray_address", None, "Ray cluster to join: host:port of its head (`ray start --head` prints it) "
                    "or 'auto'; unset: a local Ray instance on this machine's cores.")
flags.DEFINE_string("logdir", None, "Run directory (checkpoints, logs, plot, exported policy).")
flags.DEFINE_boolean("resume", False, "Continue the run in --logdir from its newest checkpoint.")
flags.DEFINE_float("checkpoint_seconds", 30.0, "Seconds between checkpoints (at iteration ends).",
                   lower_bound=0.1)
flags.DEFINE_integer("keep_checkpoints", 3, "Checkpoints kept on disk.", lower_bound=1)
flags.DEFINE_integer("eval_episodes", 10, "Deterministic evaluation episodes at the end.", lower_bound=1)
flags.DEFINE_float("eval_seconds", 600.0, "Time the final evaluation may take; past it, the episodes finished are "
                   "recorded and the policy is exported.", lower_bound=1.0)
flags.DEFINE_integer("verbose", 1, "0: silent, 1: progress bar.", lower_bound=0, upper_bound=1)
flags.DEFINE_string("encoder", None, "Encoder factory fn(observation_space) -> keras layer, as 'module:factory' or a "
                    "name registered with tfpg.register_network; tfpg adds its torso and heads.")
flags.DEFINE_string("policy_network", None, "Policy model factory fn(observation_space, action_space) -> keras.Model "
                    "returning a tfd.Distribution, as 'module:factory' or a registered name.")
flags.DEFINE_string("value_network", None, "Value model factory fn(observation_space, action_space) -> keras.Model "
                    "returning values [batch], as 'module:factory' or a registered name.")
flags.mark_flag_as_required("logdir")
flags.register_validator("checkpoint_seconds", math.isfinite, "--checkpoint_seconds must be a finite number of seconds.")

_NETWORK_FLAGS = {"encoder": "encoder", "policy": "policy_network", "value": "value_network"}
HYPERPARAMETER_FLAGS = define_hyperparameter_flags([cls.config_class for cls in tfpg.ALGORITHMS.values()])


def _settings_from_flags() -> dict:
    """The collection settings the flags give; `num_envs` is None where the flag is unset."""
    return {name: FLAGS[name].value for name in SETTINGS}


def _with_default_copies(settings: dict, agent) -> dict:
    """`settings` with an unset `num_envs` replaced by the algorithm's default number of env copies."""
    if settings["num_envs"] is None:
        return {**settings, "num_envs": agent.launcher_num_envs}
    return settings


def _new_run(logdir: str, checkpoints: str):
    """Validates every input of a new run and returns (agent, settings), before anything is written."""
    try:
        check_env_id(FLAGS.env)
        config_class = tfpg.ALGORITHMS[FLAGS.algo].config_class
        hyperparameters = hyperparameters_from_flags(HYPERPARAMETER_FLAGS, config_class)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    networks = {role: FLAGS[flag].value for role, flag in _NETWORK_FLAGS.items() if FLAGS[flag].value is not None}
    if _has_checkpoints(checkpoints):
        raise app.UsageError(
            f"{FLAGS.logdir!r} already holds a run. Pass --resume to continue it, or choose a new --logdir."
        )
    if any(os.path.exists(os.path.join(logdir, name)) for name in ("progress.csv", RECORD_NAME)):
        print(f"The run in {FLAGS.logdir!r} stopped before its first checkpoint; starting it anew.", file=sys.stderr)
    try:
        agent = tfpg.ALGORITHMS[FLAGS.algo](seed=FLAGS.seed, **networks, **hyperparameters)
        env = make_env(FLAGS.env)  # built now, so the env's spaces and a user's networks are checked first
        try:
            agent.build(env.observation_space, env.action_space)
        finally:
            env.close()
        return agent, _with_default_copies(_settings_from_flags(), agent)
    except ValueError as error:
        raise app.UsageError(str(error)) from None


def _has_checkpoints(checkpoints: str) -> bool:
    """Whether a run's checkpoint directory holds a checkpoint (temporaries of a killed write aside)."""
    return os.path.isdir(checkpoints) and bool(checkpoint_prefixes(checkpoints))


def _resumed_settings(record: dict | None) -> dict:
    """The run's recorded settings, with those given as flags applied; a different --env is refused."""
    if record is None:
        if not FLAGS["env"].present:
            raise app.UsageError(
                f"The run in {FLAGS.logdir!r} has no {RECORD_NAME} (it was not started by tfpg.train), so its env is "
                f"unknown: pass --env=<id>, and the collection flags it ran with, together with --resume."
            )
        return _settings_from_flags()
    previous = record["settings"]
    if FLAGS["env"].present and FLAGS.env != previous["env"]:
        raise app.UsageError(f"--env={FLAGS.env} but the run in {FLAGS.logdir!r} trains on {previous['env']}, and a "
                             f"run keeps its env: drop --env, or start a new run in another --logdir.")
    return {name: FLAGS[name].value if FLAGS[name].present or name not in previous else previous[name]
            for name in SETTINGS}


def _resume(logdir: str, checkpoints: str):
    """The run in `logdir` as (agent, settings, changes, record): the agent from its newest intact checkpoint,
    the settings from its record with the flags given applied, name → [old, new] of what the flags change,
    and the run record read (None for a run without one).

    Raises app.UsageError before anything is written if a flag contradicts the run."""
    networks = [flag for flag in _NETWORK_FLAGS.values() if FLAGS[flag].value is not None]
    if networks:
        raise app.UsageError(f"--resume continues with the networks recorded in the checkpoint; drop "
                             f"{', '.join('--' + flag for flag in networks)}.")
    if not _has_checkpoints(checkpoints) and os.path.exists(os.path.join(logdir, RECORD_NAME)):
        raise app.UsageError(f"The run in {FLAGS.logdir!r} stopped before its first checkpoint, so there is nothing "
                             f"to resume: run the command that started it again, without --resume, to start it anew.")
    try:
        resolve(checkpoints)  # the run exists
        record = read_run_record(logdir)
        settings = _resumed_settings(record)
        check_env_id(settings["env"])
        agent, prefix, skipped = load_newest_intact(checkpoints)
    except (FileNotFoundError, ValueError) as error:
        raise app.UsageError(f"Cannot resume from {FLAGS.logdir!r}: {error}") from None
    settings = _with_default_copies(settings, agent)
    for damaged, reason in skipped:
        print(f"Skipping damaged checkpoint {os.path.basename(damaged)}: {reason}", file=sys.stderr)
    if skipped:
        print(f"Resuming from {os.path.basename(prefix)} at {agent.total_steps} steps.",
              file=sys.stderr)
    if FLAGS["algo"].present and agent.name != FLAGS.algo:
        raise app.UsageError(f"--algo={FLAGS.algo} but the run in {FLAGS.logdir!r} is {agent.name}.")
    if FLAGS["seed"].present and agent.seed != FLAGS.seed:
        raise app.UsageError(f"--seed={FLAGS.seed} but the run in {FLAGS.logdir!r} was seeded with {agent.seed}, "
                             f"and a run keeps its seed: drop --seed, or start a new run in another --logdir.")
    try:
        asked = hyperparameters_from_flags(HYPERPARAMETER_FLAGS, agent.config_class)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    held = agent.config.to_dict()
    wanted = {**held, **{name: list(v) if isinstance(v, tuple) else v for name, v in asked.items()}}
    conflicts = resume_conflicts(held, wanted)
    if conflicts:
        raise app.UsageError(
            f"The run in {FLAGS.logdir!r} was trained with {describe_changes(conflicts)}, and these cannot change "
            f"when it continues (only {', '.join(CHANGEABLE_ON_RESUME)} can): drop those flags, or start a new "
            f"run in another --logdir."
        )
    changes = {name: [held[name], wanted[name]] for name in asked if held[name] != wanted[name]}
    if changes:
        try:
            agent = load(prefix, **{name: asked[name] for name in changes})
        except ValueError as error:
            raise app.UsageError(f"Cannot resume from {FLAGS.logdir!r}: {error}") from None
    previous = record["settings"] if record else {}
    changes.update({name: [previous[name], value] for name, value in settings.items()
                    if name in previous and previous[name] != value})
    return agent, settings, changes, record


def _check_collection(settings: dict) -> None:
    """The vector env backend has the env; Ray is installed and the cluster answers if the run uses workers."""
    try:
        check_backend(settings["env"], settings["vector_env"], settings["async_envs"])
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    if settings["num_workers"] == 0:
        if FLAGS["envs_per_worker"].present or FLAGS["ray_address"].present:
            raise app.UsageError("--envs_per_worker and --ray_address apply to Ray workers; add --num_workers.")
        return
    try:
        import_ray()
        check_reachable(settings["ray_address"])
    except (ValueError, ConnectionError) as error:
        raise app.UsageError(str(error)) from None
    local_cpus = os.cpu_count() or 1
    if not settings["ray_address"] and not os.environ.get("RAY_ADDRESS") and settings["num_workers"] > local_cpus:
        raise app.UsageError(f"--num_workers={settings['num_workers']} workers reserve one CPU each, but this machine "
                             f"has {local_cpus}; use at most {local_cpus}, or join a cluster with --ray_address.")


def _lock_logdir(logdir: str):
    """Takes an exclusive lock on the run directory; the OS releases it when the process dies."""
    handle = open(os.path.join(logdir, ".lock"), "a+")
    try:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        owner = handle.read().strip() or "unknown"
        handle.close()
        raise app.UsageError(
            f"{logdir!r} is in use by another tfpg.train process (pid {owner}). Wait for it to finish, "
            f"stop it, or choose another --logdir."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(str(os.getpid()))
    handle.flush()
    return handle


class _StopOnSignal(tfpg_callbacks.Callback):
    """Ends training at the next iteration boundary after SIGINT/SIGTERM; a second signal aborts at once.

    Stopping at a boundary means the final checkpoint (written by the Checkpoint callback at the end
    of `fit`) never holds a batch counted but not trained on.
    """

    def __init__(self):
        super().__init__()
        self.received = None
        for signum in (signal.SIGTERM, signal.SIGINT):
            # Installed explicitly: a process started in the background may inherit SIGINT as ignored.
            signal.signal(signum, self._handle)

    def _handle(self, signum, frame):
        if self.received is not None:
            raise KeyboardInterrupt(f"second signal {signum}")
        self.received = signum

    def on_epoch_end(self, epoch, logs=None):
        if self.received is not None:
            self.agent.stop_training = True


def _open_logdir(logdir: str, lock, agent, settings: dict, changes: dict, record: dict | None):
    """Creates the run directory, takes its lock and records the launch; returns the lock.

    Raises app.UsageError if the directory cannot be written (nothing of the run is written then)."""
    try:
        os.makedirs(logdir, exist_ok=True)
        lock = lock or _lock_logdir(logdir)
        write_run_record(logdir, updated_record(record, settings, agent.total_steps, changes))
    except OSError as error:
        raise app.UsageError(f"Cannot write the run into --logdir={FLAGS.logdir!r}: {error.strerror or error} "
                             f"({error.filename or logdir}). Choose a directory you can write to.") from None
    if changes:
        print("Continuing with " + ", ".join(f"{name}={new!r} (was {old!r})" for name, (old, new) in changes.items())
              + f"; recorded in {os.path.join(logdir, RECORD_NAME)}.", file=sys.stderr)
    return lock


def _train(agent, settings: dict, logdir: str, checkpoints: str) -> None:
    """Trains to the step target; an error or signal ends the process with its message and the newest checkpoint."""
    stop_on_signal = _StopOnSignal()
    callbacks = [
        stop_on_signal,
        tfpg_callbacks.Checkpoint(checkpoints, every=None, seconds=settings["checkpoint_seconds"],
                                  max_to_keep=settings["keep_checkpoints"]),
        tfpg_callbacks.CSVLogger(os.path.join(logdir, "progress.csv")),
        tfpg_callbacks.TensorBoard(os.path.join(logdir, "tensorboard")),
    ]
    remaining = settings["steps"] - agent.total_steps
    try:
        if remaining > 0:
            distributed = settings["num_workers"] > 0
            agent.fit(settings["env"], remaining, num_envs=1 if distributed else settings["num_envs"],
                      asynchronous=settings["async_envs"], callbacks=callbacks, verbose=FLAGS.verbose,
                      num_workers=settings["num_workers"],
                      envs_per_worker=settings["envs_per_worker"] if distributed else 1,
                      ray_address=settings["ray_address"] if distributed else None, vector_env=settings["vector_env"])
    except KeyboardInterrupt:
        _stop(agent, f"Aborted by a second signal. {_continue_hint(checkpoints)}", 130)
    except EnvError as error:
        _stop(agent, f"Training stopped: {error}\n{_continue_hint(checkpoints)}", 1)
    except NonFiniteError as error:
        _stop(agent, f"Training stopped: {error}\n{_continue_hint(checkpoints)} (the newest checkpoint is the last "
                     f"good state)", 1)
    except CheckpointWriteError as error:
        _stop(agent, f"Training stopped: {error} {_continue_hint(checkpoints)}", 1)
    except OSError as error:  # the logs (CSV, TensorBoard) could not be written
        _stop(agent, f"Training stopped: a log file could not be written ({error}). Free disk space. "
                     f"{_continue_hint(checkpoints)}", 1)
    except ValueError as error:  # what could only be checked once collection started (e.g. a cluster's CPUs)
        _stop(agent, f"Training could not go on: {error}\n{_continue_hint(checkpoints)}", 2)
    agent.close()
    if stop_on_signal.received is not None:
        _stop(agent, f"Interrupted at {agent.total_steps} steps. {_continue_hint(checkpoints)}", 130)


def _continue_hint(checkpoints: str) -> str:
    """How to go on from the run's newest checkpoint, or, where none was written, how to start the run anew."""
    newest = tf.train.latest_checkpoint(checkpoints) if os.path.isdir(checkpoints) else None
    if newest is None:
        return ("No checkpoint was written, so there is nothing to resume: run the same command again (without "
                "--resume) to start the run anew in this --logdir.")
    return f"Newest checkpoint: {newest}. Continue with --resume --logdir={FLAGS.logdir}."


def _stop(agent, message: str, status: int) -> None:
    agent.close()
    print(f"\n{message}", file=sys.stderr)
    sys.exit(status)


def _raise_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def _finish(agent, env_id: str, episodes: int, seconds: float, logdir: str, checkpoints: str) -> None:
    """The final evaluation, export, evaluation record and plot; Ctrl-C or SIGTERM stop them at once."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _raise_keyboard_interrupt)
    csv_path = os.path.join(logdir, "progress.csv")
    plot_path = os.path.join(logdir, "learning_curve.png")
    kept = f"The final checkpoint {tf.train.latest_checkpoint(checkpoints)} is kept"
    try:
        try:
            result = agent.evaluate(env_id, episodes=episodes, max_seconds=seconds)
        except EvaluationTimeout as timeout:
            print(f"{timeout} Recording the {len(timeout.returns)} finished episode(s) and exporting the policy; "
                  f"evaluate it later with python -m tfpg.evaluate --policy={FLAGS.logdir}, or set --eval_episodes "
                  f"or --eval_seconds (with --resume to export again).", file=sys.stderr)
            result = {**(episode_summary(timeout.returns, timeout.lengths) if timeout.returns else
                         {"mean_return": float("nan"), "std_return": float("nan"), "episodes": 0}),
                      "timed_out": True}
        policy_path = agent.export(os.path.join(logdir, "policy"))
        write_json(os.path.join(logdir, "evaluation.json"),
                   {"env": env_id, "algorithm": agent.name, "total_steps": agent.total_steps, "deterministic": True,
                    **result})
        if os.path.exists(csv_path):
            plot_learning_curve(csv_path, plot_path, f"{agent.name.upper()} on {env_id}")
    except KeyboardInterrupt:
        _stop(agent, f"Interrupted during the final evaluation and export. {kept}; an earlier export in "
                     f"{os.path.join(logdir, 'policy')} is unchanged. Export it with --resume --logdir={FLAGS.logdir} "
                     f"(no more steps are trained).", 130)
    except EnvError as error:
        _stop(agent, f"The final evaluation stopped: {error} {kept}; the policy was not exported. Fix the env, "
                     f"then export with --resume --logdir={FLAGS.logdir}.", 1)
    except (OSError, tf.errors.OpError) as error:
        _stop(agent, f"The final evaluation and export failed: {getattr(error, 'message', None) or error}. {kept}; an "
                     f"earlier export is unchanged (exports are written beside it and moved into place). Free disk "
                     f"space, then export with --resume --logdir={FLAGS.logdir}.", 1)
    print(f"Trained {agent.name} on {env_id} for {agent.total_steps} steps.")
    print(f"Evaluation over {result['episodes']} episodes: "
          f"{result['mean_return']:.1f} ± {result['std_return']:.1f}")
    print(f"Policy (SavedModel): {policy_path}")
    print(f"Checkpoints:         {checkpoints}")
    print(f"Logs:                {csv_path} and {os.path.join(logdir, 'tensorboard')}")
    print(f"Learning curve:      {plot_path}")
    print(f"Evaluation:          {os.path.join(logdir, 'evaluation.json')}")
    print(f"Run it:  python -m tfpg.evaluate --policy={logdir}")


def main(argv):
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {' '.join(argv[1:])}")
    if not FLAGS["verbosity"].present:
        absl_logging.set_verbosity(absl_logging.WARNING)
    if not FLAGS.logdir:
        raise app.UsageError("--logdir is empty; name the directory of the run (it is created if missing).")
    logdir = os.path.abspath(FLAGS.logdir)
    if os.path.exists(logdir) and not os.path.isdir(logdir):
        raise app.UsageError(f"--logdir={FLAGS.logdir!r} exists and is not a directory; choose a directory path.")
    checkpoints = os.path.join(logdir, "checkpoints")
    # Held (and released by the OS on any exit) for the whole run; taken before an existing run is
    # read, since its writer may be rotating checkpoints.
    lock = _lock_logdir(logdir) if os.path.isdir(logdir) else None
    if FLAGS.resume:
        agent, settings, changes, record = _resume(logdir, checkpoints)
    else:
        (agent, settings), changes, record = _new_run(logdir, checkpoints), {}, None
    _check_collection(settings)
    copies = settings["num_workers"] * settings["envs_per_worker"] if settings["num_workers"] else settings["num_envs"]
    try:
        agent.check_batch_memory(copies)
    except ValueError as error:
        raise app.UsageError(str(error)) from None
    lock = _open_logdir(logdir, lock, agent, settings, changes, record)
    _train(agent, settings, logdir, checkpoints)
    _finish(agent, settings["env"], settings["eval_episodes"], settings["eval_seconds"], logdir, checkpoints)
    lock.close()


def run():
    """Console entry point."""
    run_program(main, tfpg.ALGORITHMS, HYPERPARAMETER_FLAGS)


if __name__ == "__main__":
    run()
