"""Short learning runs with fixed seeds and return thresholds (deterministic evaluation).

Each budget is a few batches past where the seed first reaches its threshold (CartPole: random actions
score about 22; Pendulum: about -1200), so a wrong update fails while the suite stays short. How far each
algorithm gets with full budgets is measured by `benchmarks/` (`benchmarks/RESULTS.md`).
"""

import pytest

import tfpg

pytestmark = pytest.mark.learning


def test_a2c_learns_cartpole_within_50k_steps():
    agent = tfpg.A2C(seed=0)
    agent.fit("CartPole-v1", steps=781 * 64, num_envs=8, verbose=0)  # whole 8 × 8-step batches within 50k
    assert agent.total_steps <= 50_000
    assert agent.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 250


def test_reinforce_with_baseline_reaches_400_on_cartpole_within_80k_steps():
    agent = tfpg.REINFORCE(seed=0, rollout_steps=500)
    agent.fit("CartPole-v1", steps=80_000, num_envs=8, verbose=0)
    assert agent.total_steps <= 80_000
    assert agent.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 400


def test_ppo_clip_solves_cartpole_within_25k_steps():
    agent = tfpg.PPO(seed=0)
    agent.fit("CartPole-v1", steps=12 * 2048, verbose=0)  # whole 2048-step batches within 25k
    assert agent.total_steps <= 25_000
    assert agent.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 475


def test_ppo_clip_reaches_minus_300_on_pendulum_within_125k_steps():
    agent = tfpg.PPO(seed=0, gamma=0.9, learning_rate=1e-3, rollout_steps=1024)
    agent.fit("Pendulum-v1", steps=30 * 4 * 1024, num_envs=4, verbose=0)  # whole batches within 125k
    assert agent.total_steps <= 125_000
    assert agent.evaluate("Pendulum-v1", episodes=10)["mean_return"] >= -300


def test_ppo_adaptive_kl_solves_cartpole_within_25k_steps():
    agent = tfpg.PPO(seed=0, loss="adaptive_kl")
    agent.fit("CartPole-v1", steps=12 * 2048, verbose=0)
    assert agent.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 475


@pytest.mark.parametrize("algorithm", [tfpg.TRPO, tfpg.NPG])
def test_natural_gradient_methods_solve_cartpole_within_45k_steps(algorithm):
    agent = algorithm(seed=0)
    agent.fit("CartPole-v1", steps=40 * 1024, verbose=0)  # whole 1024-step batches within 45k
    assert agent.total_steps <= 45_000
    assert agent.evaluate("CartPole-v1", episodes=10)["mean_return"] >= 475


def test_acktr_solves_cartpole_within_25k_steps():
    # Float-level differences (e.g. a factor-statistics subset, which changes only rounding when it
    # covers the whole batch) change which seeds land on a dip at the budget's end, so the claim is about
    # seeds in general: at least two of three fixed seeds.
    # The third seed runs only when the first two disagree: two passes (or two failures) decide the claim.
    returns = []
    for seed in (0, 1, 2):
        agent = tfpg.ACKTR(seed=seed, rollout_steps=256)
        agent.fit("CartPole-v1", steps=80 * 256, verbose=0)  # whole batches within 25k
        assert agent.total_steps <= 25_000
        returns.append(agent.evaluate("CartPole-v1", episodes=10)["mean_return"])
        if sum(r >= 475 for r in returns) == 2 or sum(r < 475 for r in returns) == 2:
            break
    assert sum(r >= 475 for r in returns) >= 2, returns
