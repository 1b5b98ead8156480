"""`python -m tfpg.evaluate`: the env from the policy's record, run folders, and folders that are not tfpg policies."""

import json
import os
import shutil

import pytest
import tensorflow as tf

import tfpg

from helpers import run


@pytest.fixture(scope="module")
def run_folder(tmp_path_factory):
    """A run folder holding the export of an agent trained on Pendulum, and its checkpoints."""
    folder = tmp_path_factory.mktemp("run")
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.fit("Pendulum-v1", steps=16, verbose=0)
    agent.save(str(folder / "checkpoints"))
    agent.export(str(folder / "policy"))
    return folder


def _evaluate(*flags):
    return run(["-m", "tfpg.evaluate", "--episodes=1", *flags])


def test_the_env_trained_on_is_recorded_in_checkpoints_and_exports(run_folder):
    assert tfpg.load(str(run_folder / "checkpoints")).env_id == "Pendulum-v1"
    with open(run_folder / "policy" / "assets.extra" / "tfpg.json") as file:
        assert json.load(file)["env"] == "Pendulum-v1"
    loaded = tfpg.load(str(run_folder / "checkpoints"))  # a loaded agent exports the env it was trained on
    with open(os.path.join(loaded.export(str(run_folder / "again")), "assets.extra", "tfpg.json")) as file:
        assert json.load(file)["env"] == "Pendulum-v1"


def test_a_run_folder_is_evaluated_on_the_env_its_policy_records(run_folder):
    result = _evaluate(f"--policy={run_folder}")
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.startswith("Pendulum-v1: mean return")


def _foreign_saved_model(path):
    module = tf.Module()
    module.double = tf.function(lambda x: {"y": 2 * x}, input_signature=[tf.TensorSpec([None], tf.float32)])
    tf.saved_model.save(module, str(path), signatures={"double": module.double.get_concrete_function()})


def test_folders_that_are_not_tfpg_policies_get_a_clear_message(tmp_path, run_folder):
    garbled = tmp_path / "garbled"
    garbled.mkdir()
    (garbled / "saved_model.pb").write_bytes(b"\x00not a protocol buffer" * 10)
    foreign = tmp_path / "foreign"
    _foreign_saved_model(foreign)
    damaged_record = tmp_path / "damaged"
    shutil.copytree(run_folder / "policy", damaged_record)
    (damaged_record / "assets.extra" / "tfpg.json").write_text("{not json")
    for flags, message in [
        ([f"--policy={tmp_path / 'nothing'}"], "is not a SavedModel directory"),
        ([f"--policy={garbled}", "--env=Pendulum-v1"], "could not be loaded as a SavedModel"),
        ([f"--policy={foreign}", "--env=Pendulum-v1"], "not a tfpg policy: it has no serving_default"),
        ([f"--policy={foreign}"], "does not record the env"),
        ([f"--policy={damaged_record}"], "tfpg.json is damaged"),
    ]:
        result = _evaluate(*flags)
        assert result.returncode != 0 and message in result.stderr, (flags, result.stderr[-2000:])
        assert "Traceback" not in result.stderr, flags
