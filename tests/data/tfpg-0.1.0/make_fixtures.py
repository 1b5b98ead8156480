"""Writes small checkpoints and exports with this version of tfpg, for tests/test_compatibility.py.

    python tests/data/tfpg-0.1.0/make_fixtures.py OUTDIR    (run with tfpg 0.1.0 at commit 3dec45c)
"""
import json, os, sys
import numpy as np
import tfpg
out = sys.argv[1]
for algo, env, kwargs in [("ppo", "Pendulum-v1", dict(rollout_steps=64, minibatch_size=32, epochs=2)),
                          ("acktr", "CartPole-v1", dict(rollout_steps=32)),
                          ("trpo", "Pendulum-v1", dict(rollout_steps=64))]:
    agent = tfpg.ALGORITHMS[algo](seed=1, **kwargs)
    agent.fit(env, steps=128, verbose=0)
    agent.save(os.path.join(out, algo, "checkpoints"))
    agent.export(os.path.join(out, algo, "policy"))
    import gymnasium as gym
    e = gym.make(env)
    obs = np.stack([e.reset(seed=i)[0] for i in range(3)])
    record = {"observations": obs.tolist(), "deterministic_actions": agent.predict(obs).tolist(),
              "values": agent.value_model(obs.astype(np.float32)).numpy().tolist(), "total_steps": agent.total_steps}
    json.dump(record, open(os.path.join(out, algo, "expected.json"), "w"))
