"""Running the package's command-line programs in subprocesses."""

import csv
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run(args, timeout=300, **kwargs):
    """Runs `python args...` from the repository root; returns the CompletedProcess."""
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=timeout, **kwargs)


def readme_blocks() -> list[tuple[str, str]]:
    """(language, code) of every fenced block of the README, dedented."""
    import re
    import textwrap

    with open(os.path.join(ROOT, "README.md")) as file:
        text = file.read()
    return [(language, textwrap.dedent(code))
            for language, code in re.findall(r"^ *```(\w+)\n(.*?)^ *```", text, re.S | re.M)]


def substituted(code: str, substitutions: list) -> str:
    """`code` with each (old, new) replaced; fails if a README block no longer holds `old`."""
    for old, new in substitutions:
        assert old in code, f"{old!r} is no longer in its README block:\n{code}"
        code = code.replace(old, new)
    return code


def explicit_hessian(function, variables):
    """The Hessian `[P, P]` (NumPy) of a scalar `function(parameters)` in the flat vector of `variables`' values,
    by two nested gradient tapes: a reference independent of tfpg's Fisher-vector products."""
    import tensorflow as tf

    from tfpg.optimizers import flatten, unflatten

    theta = tf.Variable(flatten(variables))
    with tf.GradientTape() as outer:
        with tf.GradientTape() as inner:
            value = function(unflatten(theta, variables))
        gradient = inner.gradient(value, theta)
    return outer.jacobian(gradient, theta).numpy()


def read_csv(path):
    """Rows of a CSV file as dicts."""
    with open(path, newline="") as file:
        return list(csv.DictReader(file))


BLOCKED_IMPORTS = "import sys\nfor name in ('tfpg', 'tensorflow_probability', 'keras', 'tf_keras'):\n" \
                  "    sys.modules[name] = None\n"


def serve_without_tfpg(path, observations, actions, scratch):
    """Runs an exported policy's four signatures in a Python that cannot import tfpg, TFP or Keras.

    Returns:
        {"actions", "value", "log_prob" (of `actions`), "sample" (its shape)} as lists.
    """
    import json

    import numpy as np

    np.save(os.path.join(scratch, "obs.npy"), observations)
    np.save(os.path.join(scratch, "act.npy"), actions)
    script = BLOCKED_IMPORTS + f"""
import json
import numpy as np
import tensorflow as tf
policy = tf.saved_model.load({str(path)!r})
obs = tf.constant(np.load({os.path.join(scratch, 'obs.npy')!r}))
act = tf.constant(np.load({os.path.join(scratch, 'act.npy')!r}))
out = {{
    "actions": policy.signatures["serving_default"](observations=obs)["actions"].numpy().tolist(),
    "value": policy.signatures["value"](observations=obs)["value"].numpy().tolist(),
    "log_prob": policy.signatures["log_prob"](observations=obs, actions=act)["log_prob"].numpy().tolist(),
    "sample": policy.signatures["sample"](observations=obs)["actions"].numpy().shape,
}}
print(json.dumps(out))
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])
