"""Each example runs in a tiny configuration."""

from helpers import run


def test_the_fit_example_trains_saves_and_exports_a_policy_the_serving_example_runs(tmp_path):
    trained = run(["examples/fit_cartpole.py", "--steps=640", f"--out={tmp_path}"])
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert (tmp_path / "policy" / "saved_model.pb").exists()
    assert (tmp_path / "checkpoints" / "checkpoint").exists()
    served = run(["examples/serve_exported_policy.py", f"--policy={tmp_path / 'policy'}", "--episodes=2"])
    assert served.returncode == 0, served.stderr[-3000:]
    assert served.stdout.count("episode") == 2


def test_custom_callback_example_stops_at_its_target():
    result = run(["examples/custom_callback.py", "--steps=20000", "--target=15"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "target 15.0 reached" in result.stdout


def test_own_networks_example_trains_saves_and_reloads_both_seams(tmp_path):
    result = run(["examples/own_networks.py", "--steps=2048", f"--out={tmp_path}"])
    assert result.returncode == 0, result.stderr[-3000:]
    assert "ppo on CartPole-v1 with {'encoder': 'example_encoder'}: mean return" in result.stdout
    assert "trpo on Pendulum-v1 with {'policy': 'example_policy', 'value': 'example_value'}" in result.stdout
