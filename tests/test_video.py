"""Videos of evaluation episodes: one MP4 per episode, one frame for the reset and one per step."""

import os

import cv2
import gymnasium as gym
import pytest

import tfpg

from helpers import run


def _frames(path):
    capture = cv2.VideoCapture(path)
    count = 0
    while capture.read()[0]:
        count += 1
    capture.release()
    return count


@pytest.fixture(scope="module")
def cartpole_agent():
    agent = tfpg.A2C(seed=0, rollout_steps=8)
    agent.fit("CartPole-v1", steps=16, verbose=0)
    return agent


def test_evaluate_records_every_episode_with_a_frame_per_step(tmp_path, cartpole_agent):
    result = cartpole_agent.evaluate("CartPole-v1", episodes=2, video_dir=str(tmp_path / "videos"))
    assert len(result["videos"]) == 2
    for path, length in zip(result["videos"], result["lengths"]):
        assert os.path.dirname(path) == str(tmp_path / "videos")
        assert _frames(path) == length + 1  # the reset's frame and one per step
    again = cartpole_agent.evaluate("CartPole-v1", episodes=1, video_dir=str(tmp_path / "videos"))
    assert not set(again["videos"]) & set(result["videos"])  # a second recording keeps the first
    assert all(os.path.exists(path) for path in result["videos"])


def test_a_mujoco_episode_is_recorded_headless_in_a_process_without_tensorflow(tmp_path):
    agent = tfpg.PPO(seed=0)
    result = agent.evaluate("InvertedPendulum-v5", episodes=2, video_dir=str(tmp_path))
    assert [_frames(video) for video in result["videos"]] == [length + 1 for length in result["lengths"]]
    env = gym.make("InvertedPendulum-v5", render_mode="rgb_array")
    with pytest.raises(ValueError, match="pass the env's id instead"):  # in this process it would crash
        agent.evaluate(env, episodes=1, video_dir=str(tmp_path))
    env.close()


def test_an_exported_policy_is_recorded_by_the_evaluate_launcher(tmp_path, cartpole_agent):
    policy = cartpole_agent.export(str(tmp_path / "policy"))
    result = run(["-m", "tfpg.evaluate", f"--policy={policy}", "--episodes=2", f"--video_dir={tmp_path / 'v'}"])
    assert result.returncode == 0, result.stderr[-3000:]
    videos = [line.split("Video: ")[1] for line in result.stdout.splitlines() if line.startswith("Video: ")]
    assert len(videos) == 2 and all(_frames(video) > 1 for video in videos)


def test_recording_refuses_what_it_cannot_record(tmp_path, cartpole_agent):
    (tmp_path / "a_file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        cartpole_agent.evaluate("CartPole-v1", episodes=1, video_dir=str(tmp_path / "a_file"))
    with pytest.raises(ValueError, match=r"a_file/videos' cannot be written \(Not a directory\)"):
        cartpole_agent.evaluate("CartPole-v1", episodes=1, video_dir=str(tmp_path / "a_file" / "videos"))
    (tmp_path / "locked").mkdir(mode=0o500)
    if not os.access(tmp_path / "locked", os.W_OK):  # (root may write anywhere)
        with pytest.raises(ValueError, match="cannot be written .*Permission denied"):
            cartpole_agent.evaluate("InvertedPendulum-v5", episodes=1, video_dir=str(tmp_path / "locked"))
    with pytest.raises(ValueError, match="render_mode='rgb_array'"):
        cartpole_agent.evaluate(gym.make("CartPole-v1"), episodes=1, video_dir=str(tmp_path / "v"))
