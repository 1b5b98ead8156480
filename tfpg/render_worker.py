"""A process that steps one rendering env and records its episodes, without TensorFlow.

Run as a script (`python tfpg/render_worker.py`), so the tfpg package, and
TensorFlow with it, is never imported here: TensorFlow's bundled LLVM and the
LLVM of Mesa's EGL driver, which MuJoCo renders headless with, crash a process
that loads both. `tfpg.video.RecordingProcess` sends pickled requests on stdin
and reads pickled replies on stdout:

- ("start", env_id, video_dir, prefix) → ("ready",)
- ("reset", seed) → (observation, info)
- ("step", action) → (observation, reward, terminated, truncated, info)
- ("finish",) → (list of the video paths written,), then the process exits.

An exception is replied as ("error", "Type: message").
"""

import glob
import os
import pickle
import sys
import warnings


def _serve(requests, replies) -> None:
    import gymnasium as gym

    env = None
    while True:
        request = pickle.load(requests)
        try:
            if request[0] == "start":
                _, env_id, video_dir, prefix = request
                with warnings.catch_warnings():
                    warnings.filterwarnings("ignore", message=".*Overwriting existing videos")
                    env = gym.wrappers.RecordVideo(gym.make(env_id, render_mode="rgb_array"), video_dir,
                                                   episode_trigger=lambda episode: True, name_prefix=prefix,
                                                   disable_logger=True)
                reply = ("ready",)
            elif request[0] == "reset":
                reply = env.reset(seed=request[1])
            elif request[0] == "step":
                reply = env.step(request[1])
            else:  # finish
                if env.recording:
                    env.stop_recording()
                pattern = os.path.join(glob.escape(env.video_folder), f"{glob.escape(env.name_prefix)}-episode-*.mp4")
                reply = (sorted(glob.glob(pattern), key=lambda path: int(path.rsplit("-", 1)[1].split(".")[0])),)
                env.close()
        except Exception as error:  # reported to the parent, which raises it there
            reply = ("error", f"{type(error).__name__}: {error}")
        pickle.dump(reply, replies)
        replies.flush()
        if request[0] == "finish":
            return


if __name__ == "__main__":
    _serve(sys.stdin.buffer, sys.stdout.buffer)
