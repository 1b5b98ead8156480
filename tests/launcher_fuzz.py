"""Runs seeded random malformed command lines through a launcher in-process; prints one JSON line per case.

    python tests/launcher_fuzz.py train|evaluate SEED CASES WORKDIR [POLICY]

Each case mixes valid flags with at least one invalid one (from the catalogue
below). The outcome records the exception type and message, or "accepted".
"""

import json
import os
import sys

import numpy as np
from absl import app, flags

INVALID = {
    "train": {
        "steps": ["0", "-5", "abc", "1.5"],
        "seed": ["-1", "x"],
        "num_envs": ["0", "-2"],
        "checkpoint_seconds": ["0", "-1", "nan"],
        "keep_checkpoints": ["0"],
        "eval_episodes": ["0"],
        "verbose": ["2", "-1"],
        "algo": ["foo", ""],
        "env": ["NotAnEnv-v0", "", "no_such_module:X-v0"],
        "gamma": ["1.5", "-0.1", "nan"],
        "learning_rate": ["0", "-1", "nan", "inf"],
        "clip_range": ["0.2"],  # not a hyperparameter of A2C
        "hidden_sizes": ["64,x", "0", "-3"],
        "rollout_steps": ["0"],
        "activation": ["bogus"],
        "logdir": ["<file>", ""],
    },
    "evaluate": {
        "policy": ["<missing>", "<file>", "<workdir>"],
        "env": ["NotAnEnv-v0", "Pendulum-v1"],  # the policy was exported for CartPole-v1
        "episodes": ["0", "-1", "x"],
        "seed": ["-1"],
    },
}
VALID = {
    "train": {"algo": ["a2c"], "env": ["CartPole-v1"], "seed": ["0", "3"], "num_envs": ["1", "2"],
              "steps": ["64"], "logdir": ["<workdir>/run"]},
    "evaluate": {"policy": ["<policy>"], "env": ["CartPole-v1"], "episodes": ["1", "2"], "seed": ["0", "5"]},
}


def _cases(launcher, seed, count, workdir, policy):
    rng = np.random.default_rng(seed)
    paths = {"<file>": os.path.join(workdir, "a_file"), "<missing>": os.path.join(workdir, "missing"),
             "<workdir>": workdir, "<policy>": policy}

    def fill(value):
        for key, path in paths.items():
            value = value.replace(key, path or "")
        return value

    for _ in range(count):
        invalid_names = list(rng.choice(sorted(INVALID[launcher]), size=rng.integers(1, 3), replace=False))
        chosen = {name: str(rng.choice(INVALID[launcher][name])) for name in invalid_names}
        for name, values in VALID[launcher].items():
            chosen.setdefault(name, str(rng.choice(values)))
        argv = [f"--{name}={fill(value)}" for name, value in chosen.items()]
        yield invalid_names, argv


def main():
    launcher, seed, count, workdir = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
    policy = sys.argv[5] if len(sys.argv) > 5 else None
    open(os.path.join(workdir, "a_file"), "w").close()
    if launcher == "train":
        from tfpg import train as module
    else:
        from tfpg import evaluate as module
    for invalid_names, argv in _cases(launcher, seed, count, workdir, policy):
        flags.FLAGS.unparse_flags()
        outcome = {"invalid": invalid_names, "argv": argv}
        try:
            flags.FLAGS([f"tfpg.{launcher}", *argv])
            module.main([f"tfpg.{launcher}"])
            outcome["result"] = "accepted"
        except (flags.Error, app.UsageError) as error:
            outcome.update(result="refused", type=type(error).__name__, message=str(error))
        except BaseException as error:  # anything else is a crash the test reports
            outcome.update(result="crashed", type=type(error).__name__, message=str(error)[:500])
        outcome["workdir"] = sorted(os.listdir(workdir))
        print(json.dumps(outcome), flush=True)


if __name__ == "__main__":
    main()
