"""What a new user sees first: a quiet start, plain output where it is piped, help and usage errors."""

import os
import re
import subprocess
import sys

import gymnasium as gym
import pytest

import tfpg

from helpers import ROOT, run

# absl's prefix of a native log line: severity, date, time, thread id
NATIVE_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ ")


def _lines(text):
    return sorted(NATIVE_PREFIX.sub("", line) for line in text.splitlines() if line.strip())


def _python(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_import_tfpg_prints_nothing_and_keeps_what_tensorflow_printed():
    raw = _python("import tensorflow, tensorflow_probability\ntensorflow.config.list_physical_devices()")
    quiet = _python("import sys, tfpg\nfrom tfpg import native_output\nprint(native_output.held_messages(), end='')")
    assert quiet.returncode == 0, quiet.stderr
    assert quiet.stderr == ""
    assert _lines(quiet.stdout) == _lines(raw.stderr)  # held back, not lost


def test_a_script_that_trains_an_agent_prints_nothing_to_stderr():
    script = ("import tfpg\nagent = tfpg.A2C(seed=0, rollout_steps=8)\n"
              "agent.fit('CartPole-v1', steps=32, verbose=0)\nprint(agent.total_steps)")
    result = _python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "32"
    assert result.stderr == ""  # the device set-up's error line is held back like the import's notices


def test_an_absl_program_with_a_user_network_that_saves_prints_nothing_to_stderr(tmp_path):
    # Under absl.app.run the device set-up, the first compiled acting call of a network that is not tfpg's MLP
    # (oneDNN's int32 notice) and each checkpoint save (absl's INFO "Sharding callback duration") each printed
    # a line.
    script = ("from absl import app\nimport tfpg\nimport keras\n"
              "def main(argv):\n"
              "    agent = tfpg.PPO(seed=0, rollout_steps=32, minibatch_size=32, epochs=1,\n"
              "                     encoder=lambda space: keras.Sequential([keras.layers.Dense(8)]))\n"
              "    agent.fit('CartPole-v1', steps=32, verbose=0)\n"
              f"    agent.save({str(tmp_path / 'checkpoints')!r})\n"
              "    print(agent.total_steps)\n"
              "app.run(main)\n")
    result = _python(script)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "32"
    assert result.stderr == ""


def test_the_launcher_prints_tensorflows_lines_when_asked(tmp_path):
    devices = _python("import tensorflow as tf\ntf.config.list_logical_devices()")
    shown = run(["-m", "tfpg.train", "--steps=32", "--num_envs=1", "--rollout_steps=32", "--eval_episodes=1",
                 "--verbose=0", f"--logdir={tmp_path / 'shown'}", "--tf_logs"])
    assert shown.returncode == 0, shown.stderr[-3000:]
    assert _lines(shown.stderr) == _lines(devices.stderr)


def test_the_launcher_starts_quietly_and_writes_progress_to_a_pipe_as_plain_lines(tmp_path):
    result = run(["-m", "tfpg.train", "--steps=640", "--num_envs=2", "--rollout_steps=32", "--eval_episodes=1",
                  f"--logdir={tmp_path / 'run'}"])
    assert result.returncode == 0 and result.stderr == "", result.stderr[-3000:]
    assert not any(character in result.stdout for character in "\r\b\x1b")
    progress = [line for line in result.stdout.splitlines() if re.match(r"^\d+/640 steps \(\d+%\) ", line)]
    assert progress[0].startswith("64/640 steps (10%) episode_return=")  # after the first iteration
    assert progress[-1].startswith("640/640 steps (100%)")  # and at the end


@pytest.mark.parametrize("algorithm", ["ppo", "a2c"])
def test_help_exits_0_and_shows_the_chosen_algorithms_defaults(algorithm):
    result = run(["-m", "tfpg.train", f"--algo={algorithm}", "--help"])
    assert result.returncode == 0, result.stderr[-3000:]
    config = tfpg.ALGORITHMS[algorithm].config_class()
    assert f"Hyperparameters of {algorithm}" in result.stdout
    assert f"--learning_rate: {type(config).__dataclass_fields__['learning_rate'].metadata['help']}" in result.stdout
    line = " ".join(result.stdout.split("--learning_rate:")[1].split("--")[0].split())  # unwrapped
    assert f"(default: {config.learning_rate})" in line
    assert "Default: algorithm's" not in result.stdout


def test_helpfull_lists_only_tfpgs_flags():
    result = run(["-m", "tfpg.train", "--helpfull"])
    assert result.returncode == 0, result.stderr[-3000:]
    flags = re.findall(r"^  --(\w+):", result.stdout, flags=re.MULTILINE)
    assert "clip_range" in flags and "kfac_damping" in flags and "logdir" in flags
    assert not [flag for flag in flags if "tpu" in flag or flag.startswith("test_")]


def test_a_usage_error_gives_its_reason_first_and_a_short_hint(tmp_path):
    result = run(["-m", "tfpg.train", f"--logdir={tmp_path / 'run'}", "--gamma=7"])
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[0] == ("python -m tfpg.train: Invalid hyperparameter gamma=7.0: out of range; expected a number in "
                        "[0.0, 1.0].")
    assert lines[1:] == ["The flags: python -m tfpg.train --help"]


def test_a_mujoco_gl_value_mujoco_refuses_is_named_before_a_run_is_written(tmp_path):
    import os

    result = run(["-m", "tfpg.train", "--env=InvertedPendulum-v5", f"--logdir={tmp_path / 'run'}", "--steps=64"],
                 env={**os.environ, "MUJOCO_GL": "bogus"})
    assert result.returncode == 2
    assert result.stderr.splitlines()[0].startswith(
        "python -m tfpg.train: MuJoCo refuses the environment variable MUJOCO_GL='bogus'")
    assert "egl, osmesa or glx" in result.stderr and not (tmp_path / "run").exists()


def test_building_several_agents_in_one_process_prints_no_retracing_warnings():
    # TensorFlow warns once a function has been traced 5 times within its recent calls
    result = _python("import numpy as np, tfpg\n"
                     "for seed in range(5):\n"
                     "    for algorithm in ('ppo', 'acktr'):\n"
                     "        agent = tfpg.ALGORITHMS[algorithm](seed=seed, rollout_steps=8)\n"
                     "        agent.fit('Pendulum-v1', steps=16, verbose=0)\n"
                     "        agent.predict(np.zeros((3, 3)))\n")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "retracing" not in result.stderr


def test_unsupported_spaces_suggest_the_wrapper_of_their_kind():
    agent = tfpg.PPO()
    with pytest.raises(ValueError, match="gymnasium.ActionWrapper"):
        agent.build(gym.spaces.Box(-1, 1, (3,)), gym.spaces.Text(5))
    with pytest.raises(ValueError, match="gymnasium.ObservationWrapper"):
        agent.build(gym.spaces.Text(5), gym.spaces.Discrete(2))


def test_progress_after_earlier_training_counts_the_agents_steps_from_zero(capsys):
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.fit("CartPole-v1", steps=64, num_envs=2, verbose=0)
    capsys.readouterr()
    agent.fit("CartPole-v1", steps=64, num_envs=2, verbose=1)  # as a resumed run continues
    lines = [line for line in capsys.readouterr().out.splitlines() if " steps (" in line]
    assert lines[0].startswith("80/128 steps (62%) ") and lines[-1].startswith("128/128 steps (100%) ")
    agent.close()


def test_the_version_has_one_source_that_the_package_the_launchers_and_the_changelog_show():
    from importlib.metadata import version

    assert tfpg.__version__ == version("tfpg")
    for program in ("tfpg.train", "tfpg.evaluate"):
        result = run(["-m", program, "--version"])
        assert result.returncode == 0 and result.stdout.strip() == f"tfpg {tfpg.__version__}", result.stderr
    with open(os.path.join(ROOT, "CHANGELOG.md")) as file:
        assert f"## {tfpg.__version__} " in file.read()
