"""Seeded random malformed command lines: each launcher refuses every one clearly and writes nothing."""

import json

import gymnasium as gym

import tfpg
from tests.helpers import run


def _fuzz(launcher, tmp_path, *extra, seed=5, cases=80):
    workdir = tmp_path / "work"
    workdir.mkdir()
    result = run(["tests/launcher_fuzz.py", launcher, str(seed), str(cases), str(workdir), *extra], timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    outcomes = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(outcomes) == cases
    return outcomes


def _assert_refused_clearly(outcomes, before):
    for outcome in outcomes:
        assert outcome["result"] == "refused", outcome
        assert any(name in outcome["message"] for name in outcome["invalid"]), outcome
        assert outcome["workdir"] == before, outcome


def test_train_refuses_every_malformed_command_line(tmp_path):
    _assert_refused_clearly(_fuzz("train", tmp_path), ["a_file"])


def test_evaluate_refuses_every_malformed_command_line(tmp_path):
    agent = tfpg.A2C(seed=0)
    agent.build(gym.spaces.Box(-1.0, 1.0, (4,)), gym.spaces.Discrete(2))
    policy = agent.export(str(tmp_path / "policy"))
    _assert_refused_clearly(_fuzz("evaluate", tmp_path, policy, cases=20), ["a_file"])
