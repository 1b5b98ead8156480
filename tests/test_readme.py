"""Every code block of the README runs, with short step counts, so that the README cannot drift from the code.

Each block is matched by a phrase it holds to how it runs: its Python in a fresh namespace, its commands one
by one, or the test that runs it already. A block that matches no entry, or an entry whose phrase or
substitutions no longer fit its block, fails the test.
"""

import json
import os
import shlex
import subprocess
import sys
import textwrap

import pytest

from helpers import ROOT, readme_blocks, substituted

# What a reader of the README has at hand before a block that continues the text: tfpg imported, an agent made.
PRELUDE = "import tfpg\n"
DICT_ENV = textwrap.dedent('''
    import gymnasium as gym, numpy as np
    from gymnasium import spaces

    class MyEnv(gym.Env):
        observation_space = spaces.Dict({"image": spaces.Box(0, 255, (64, 64, 3), np.uint8),
                                         "state": spaces.Box(-np.inf, np.inf, (7,), np.float32)})
        action_space = spaces.Discrete(2)

        def reset(self, *, seed=None, options=None):
            super().reset(seed=seed)
            self.t = 0
            return self.observation_space.sample(), {}

        def step(self, action):
            self.t += 1
            return self.observation_space.sample(), float(action), False, self.t >= 20, {}

    image, state = np.zeros((64, 64, 3), np.uint8), np.zeros(7, np.float32)
    import tensorflow as tf
''')

MASK_ENV = "import numpy as np\nfrom tests.mask_envs import LegalMovesEnv as MyGame\n" \
           "progress, mask = np.array([0.5], np.float32), np.array([0, 0, 1, 1, 0, 1, 0, 1], np.int8)\n"

# phrase -> (kind, substitutions, prelude or reason)
BLOCKS = {
    "make demo": ("elsewhere", "CI runs `make test`; `make demo` runs tfpg.train and tfpg.evaluate, whose "
                               "commands the command-line block runs"),
    'history = agent.fit("CartPole-v1", steps=200_000': ("python", [("steps=200_000", "steps=256")], ""),
    "def encoder(observation_space):": ("python", [], ""),
    "the PPO Atari settings": ("python", [("steps=10_000_000", "steps=1024")], PRELUDE),
    "env = MyEnv()": ("python", [("tfpg.PPO()", "tfpg.PPO(rollout_steps=64, minibatch_size=64)"),
                                 ("steps=1_000_000", "steps=64")], PRELUDE + DICT_ENV),
    'agent.export("runs/masked")': ("python", [("tfpg.PPO()", "tfpg.PPO(rollout_steps=64, minibatch_size=64)"),
                                               ("steps=1_000_000", "steps=64")], PRELUDE + MASK_ENV),
    'agent = tfpg.PPO(recurrent="lstm"': ("python", [("steps=300_000", "steps=256"),
                                                    ("recurrent_units=64)", "recurrent_units=8, rollout_steps=128)")],
                                       ""),
    "fisher_vector_product(mean_kl_fn": ("python", [], ""),
    "kfac.capture(tape)": ("python", [], ""),
    "python -m tfpg.train --algo=a2c --env=CartPole-v1": ("sh", [("--steps=200000", "--steps=2000")], ""),
    'vector_env="envpool"': ("python", [("steps=1_000_000", "steps=512")],
                             PRELUDE + "agent = tfpg.PPO(rollout_steps=64, minibatch_size=64)\n"),
    'ray_address="10.0.0.1:6379"': ("ray", [("steps=1_000_000", "steps=128"), ("num_workers=4", "num_workers=1"),
                                            ("envs_per_worker=8", "envs_per_worker=2"),
                                            ('"10.0.0.1:6379"', "address")],
                                    PRELUDE + "agent = tfpg.PPO(rollout_steps=64, minibatch_size=64)\n"),
    "ray start --head": ("elsewhere", "tests/test_ray_two_hosts.py runs these commands on two hosts"),
    "python -m tfpg.sweep": ("elsewhere", "tests/test_sweep.py runs this command, stops it with Ctrl-C and runs "
                                          "it again"),
}


def _entry(code: str) -> tuple[str, tuple]:
    matches = [(phrase, how) for phrase, how in BLOCKS.items() if phrase in code]
    assert len(matches) == 1, f"a README block matches {len(matches)} entries of BLOCKS:\n{code}"
    return matches[0]


def _blocks_of(kind: str) -> list[tuple[str, str, str]]:
    """(phrase, substituted code, prelude) of the blocks that run as `kind`."""
    found = []
    for _, code in readme_blocks():
        phrase, how = _entry(code)
        if how[0] == kind:
            found.append((phrase, substituted(code, how[1]), how[2]))
    return found


def test_every_readme_block_has_exactly_one_way_to_run():
    blocks = readme_blocks()
    assert len(blocks) >= len(BLOCKS)
    used = {_entry(code)[0] for _, code in blocks}
    assert used == set(BLOCKS), f"entries that match no README block: {set(BLOCKS) - used}"


def _run_python(blocks, cwd, timeout=900) -> None:
    """Runs each block (its prelude first) in a fresh namespace of one Python process in `cwd`."""
    script = cwd / "readme_blocks.json"
    script.write_text(json.dumps([[phrase, prelude + code] for phrase, code, prelude in blocks]))
    driver = ("import json, sys, traceback\n"
              "for phrase, code in json.load(open(sys.argv[1])):\n"
              "    try:\n"
              "        exec(compile(code, phrase, 'exec'), {'__name__': '__readme__'})\n"
              "    except BaseException:\n"
              "        traceback.print_exc()\n"
              "        sys.exit(f'README block {phrase!r} failed')\n")
    result = subprocess.run([sys.executable, "-c", driver, str(script)], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env={**os.environ, "PYTHONPATH": ROOT})
    assert result.returncode == 0, result.stderr[-4000:]


def test_the_readme_python_blocks_run(tmp_path):
    _run_python(_blocks_of("python"), tmp_path)


def _run_commands(code: str, cwd) -> None:
    for line in code.replace("\\\n", " ").splitlines():
        command = line.split("#")[0].strip()
        if not command:
            continue
        words = shlex.split(command)
        assert words[0] == "python", command
        result = subprocess.run([sys.executable, *words[1:]], cwd=cwd, capture_output=True, text=True, timeout=600,
                                env={**os.environ, "PYTHONPATH": ROOT})
        assert result.returncode == 0, (command, result.stderr[-3000:])


def test_the_readme_command_line_block_runs(tmp_path):
    for _, code, _ in _blocks_of("sh"):
        _run_commands(code, tmp_path)
    assert (tmp_path / "runs" / "cartpole" / "policy" / "saved_model.pb").exists()


@pytest.mark.ray
@pytest.mark.xdist_group("ray")
def test_the_readme_ray_block_runs_on_a_local_cluster(tmp_path):
    ([(phrase, code, prelude)]) = _blocks_of("ray")
    start = ("import ray\nray.init(address='local', num_cpus=2, include_dashboard=False, "
             "_system_config={'worker_niceness': 0})\n"
             "address = ray.get_runtime_context().gcs_address\n")
    _run_python([(phrase, code, start + prelude)], tmp_path)
