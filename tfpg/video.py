"""Videos of evaluation episodes: Gymnasium's `RecordVideo` around an env that renders RGB frames.

Every episode becomes `<video_dir>/<prefix>-<time>-episode-<k>.mp4`, with one
frame for the reset and one per step. The time in the name keeps a second
recording from overwriting the first. MuJoCo envs render headless through
Mesa's EGL in a process of their own (`RecordingProcess`), since TensorFlow's
bundled LLVM and Mesa's crash a process that loads both; the classic-control
envs render here with pygame's off-screen driver when there is no display.
"""

from __future__ import annotations

import glob
import importlib.util
import os
import pickle
import subprocess
import sys
import tempfile
import time
import warnings

import gymnasium as gym


def _check_video_dir(video_dir: str) -> str:
    video_dir = os.path.abspath(os.fspath(video_dir))
    if os.path.exists(video_dir) and not os.path.isdir(video_dir):
        raise ValueError(f"video_dir={video_dir!r} is a file; choose a directory for the videos.")
    if importlib.util.find_spec("moviepy") is None:
        raise ValueError("Recording videos needs MoviePy (and pygame for the classic-control envs): "
                         "pip install 'tfpg[video]'.")
    try:  # made and tried now, so that an evaluation does not run to its end before the first video fails
        os.makedirs(video_dir, exist_ok=True)
        with tempfile.TemporaryFile(dir=video_dir):
            pass
    except OSError as error:
        raise ValueError(f"video_dir={video_dir!r} cannot be written ({error.strerror or error}); choose a "
                         f"directory you can write to.") from None
    return video_dir


def recorded_env(env_id: str, video_dir: str, prefix: str) -> gym.Env:
    """An env of `env_id` whose every episode is recorded into `video_dir`; `finish_recording` ends it.

    MuJoCo envs run in a `RecordingProcess`; others render here.
    """
    from tfpg.envs import make_env

    video_dir = _check_video_dir(video_dir)
    _render_headless()
    env = make_env(env_id, render_mode="rgb_array")
    if not is_mujoco(env):
        return start_recording(env, video_dir, prefix)
    env.close()
    return RecordingProcess(env_id, video_dir, _unique_prefix(video_dir, prefix))


def _render_headless() -> None:
    """Without a display, pygame draws off-screen (read when it makes its first frame)."""
    if not os.environ.get("DISPLAY"):
        os.environ.setdefault("SDL_VIDEODRIVER", "dummy")
        os.environ.setdefault("SDL_AUDIODRIVER", "dummy")


def _unique_prefix(video_dir: str, prefix: str) -> str:
    """`prefix` with the time, and a count if needed, so no video already in `video_dir` is overwritten."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    unique, count = f"{prefix}-{stamp}", 1
    while glob.glob(os.path.join(glob.escape(video_dir), f"{glob.escape(unique)}-episode-*.mp4")):
        count += 1
        unique = f"{prefix}-{stamp}-{count}"
    return unique


def start_recording(env: gym.Env, video_dir: str, prefix: str) -> gym.wrappers.RecordVideo:
    """`env` wrapped to record every episode into `video_dir` (created if missing).

    Raises:
        ValueError: `video_dir` is a file, MoviePy is missing, or `env` does not render RGB frames.
    """
    video_dir = _check_video_dir(video_dir)
    if is_mujoco(env):
        raise ValueError("A MuJoCo env cannot be recorded in a process that has loaded TensorFlow (its LLVM and "
                         "that of Mesa's EGL driver collide): pass the env's id instead, and tfpg records it in a "
                         "process of its own.")
    if env.render_mode != "rgb_array":
        raise ValueError(f"Recording a video needs an env that renders RGB frames; this one has "
                         f"render_mode={env.render_mode!r}. Make it with render_mode='rgb_array', or pass its id.")
    _render_headless()
    unique = _unique_prefix(video_dir, prefix)
    with warnings.catch_warnings():  # the names are new, so the folder's older videos are not overwritten
        warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
        return gym.wrappers.RecordVideo(env, video_dir, episode_trigger=lambda episode: True, name_prefix=unique,
                                        disable_logger=True)


def is_mujoco(env: gym.Env) -> bool:
    """Whether `env` is a MuJoCo env (whose headless rendering cannot share a process with TensorFlow)."""
    return type(env.unwrapped).__module__.startswith("gymnasium.envs.mujoco")


class RecordingProcess(gym.Env):
    """One env of `env_id`, stepped and recorded in a process of its own (`tfpg.render_worker`).

    For MuJoCo envs: TensorFlow's bundled LLVM and the LLVM of Mesa's EGL driver crash a process that
    loads both, so the frames are rendered and written where TensorFlow is not loaded. Observations,
    rewards and actions cross a pipe; the frames do not. `finish()` returns the video paths.
    """

    def __init__(self, env_id: str, video_dir: str, prefix: str):
        probe = gym.make(env_id)
        self.observation_space, self.action_space, self.spec = probe.observation_space, probe.action_space, probe.spec
        probe.close()
        worker = os.path.join(os.path.dirname(os.path.abspath(__file__)), "render_worker.py")
        environment = {**os.environ, "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl")}
        self._process = subprocess.Popen([sys.executable, worker], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         env=environment)
        self.video_folder, self.name_prefix, self.recording = video_dir, prefix, True
        self._ask("start", env_id, video_dir, prefix)

    def _ask(self, *request):
        try:
            pickle.dump(request, self._process.stdin)
            self._process.stdin.flush()
            reply = pickle.load(self._process.stdout)
        except (BrokenPipeError, EOFError):
            raise RuntimeError(f"The process recording the video died (exit status {self._process.wait()}).") from None
        if isinstance(reply, tuple) and len(reply) == 2 and isinstance(reply[0], str) and reply[0] == "error":
            raise RuntimeError(f"Recording the video failed: {reply[1]}")
        return reply

    def reset(self, *, seed=None, options=None):
        return self._ask("reset", seed)

    def step(self, action):
        return self._ask("step", action)

    def finish(self) -> list[str]:
        """Writes the episode being recorded, ends the process and returns the video paths."""
        if not self.recording:
            return []
        self.recording = False
        paths = self._ask("finish")[0]
        self._process.wait(timeout=60)
        return paths

    def close(self):
        if self._process.poll() is None:
            self._process.kill()
            self._process.wait()


def finish_recording(recorder) -> list[str]:
    """Writes the episode being recorded and returns the paths of every video `recorder` wrote, in order.

    The wrapped env is not closed."""
    if isinstance(recorder, RecordingProcess):
        return recorder.finish()
    if recorder.recording:
        recorder.stop_recording()
    pattern = os.path.join(glob.escape(recorder.video_folder), f"{glob.escape(recorder.name_prefix)}-episode-*.mp4")
    return sorted(glob.glob(pattern), key=lambda path: int(path.rsplit("-", 1)[1].split(".")[0]))
