"""`rem video`: MP4 export of the viewer's views and the PNG strip, incl. real vs imagined."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
from PIL import Image

from rem.cli import main
from rem.viewer.recording import read_mp4, write_mp4
from rem.viewer.render import Frame, Panel
from rem.viewer.video import rollout, strip, write_png


def _frame(step, values, anchored=False):
    panels = [Panel(label, np.full((64, 64, 3), v, np.uint8)) for label, v in values]
    return Frame(panels, step=step, extra={"anchored": anchored})


def test_strip_lays_out_steps_as_columns_and_panels_as_rows(tmp_path):
    frames = [_frame(t, [("real game", 10 * t), ("world model", 200)], t == 2) for t in range(5)]
    image = strip(frames, columns=3, scale=2)
    assert image.shape == (16 + 2 * (128 + 2), 80 + 3 * (128 + 2), 3)
    # column t, row r holds panel r of frame t, upscaled
    assert (image[16 + 5 : 16 + 120, 80 + 5 : 80 + 120] == 0).all()  # t=0 real
    assert (image[16 + 5 : 16 + 120, 80 + 130 + 5 : 80 + 130 + 120] == 10).all()  # t=1 real
    assert (image[16 + 130 + 5 : 16 + 250, 80 + 5 : 80 + 120] == 200).all()  # t=0 imagined
    path = write_png(tmp_path / "still.png", image)
    assert np.array_equal(np.asarray(Image.open(path)), image)
    with pytest.raises(ValueError, match=".png"):
        write_png(tmp_path / "still.jpg", image)


def test_mp4_round_trip_and_bad_names(tmp_path):
    frames = np.stack([np.full((40, 50, 3), 30 * i, np.uint8) for i in range(5)])
    path = write_mp4(tmp_path / "a.mp4", frames, fps=15)
    video = read_mp4(path)
    assert video.shape == (5, 48, 64, 3)  # padded to multiples of 16, not rescaled
    assert abs(int(video[4, 20, 20, 1]) - 120) <= 4 and (video[:, 40:, :] < 8).all()
    with pytest.raises(ValueError, match=".mp4"):
        write_mp4(tmp_path / "a.avi", frames, fps=15)
    with pytest.raises(ValueError, match="no frames"):
        write_mp4(tmp_path / "b.mp4", frames[:0], fps=15)


def test_video_cli_rejects_bad_arguments(tmp_path, capsys):
    assert main(["video", str(tmp_path), "--out", str(tmp_path / "x.gif")]) == 2
    assert "--out must be an .mp4" in capsys.readouterr().err
    args = ["video", str(tmp_path), "--out", str(tmp_path / "x.mp4"), "--still", "x.jpg"]
    assert main(args) == 2 and "--still must be a .png" in capsys.readouterr().err
    assert main(["video", str(tmp_path), "--out", str(tmp_path / "x.mp4")]) == 2
    assert "manifest.json" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # human-wm needs a person: not a video mode
        main(["video", str(tmp_path), "--mode", "human-wm", "--out", str(tmp_path / "x.mp4")])


# ----------------------------------------------------------------------------- end to end


@pytest.fixture(scope="module")
def run_dir(quick_run_dir, tmp_path_factory):
    return shutil.copytree(quick_run_dir, tmp_path_factory.mktemp("video") / "run")


@pytest.mark.slow
def test_real_vs_imagined_video_and_still(run_dir, tmp_path, capsys):
    out, still = tmp_path / "rvi.mp4", tmp_path / "rvi.png"
    argv = ["video", str(run_dir), "--mode", "real-vs-imagined", "--out", str(out)]
    argv += ["--still", str(still), "--steps", "12", "--header", "--device", "cpu"]
    assert main([*argv, "--still-start", "12"]) == 2  # must lie within --steps
    assert main([*argv, "--still-start", "3"]) == 0
    video = read_mp4(out)
    assert video.shape[0] == 13  # the reset frame + 12 steps
    image = np.asarray(Image.open(still))
    assert image.shape == (16 + 2 * 130, 80 + 10 * 130, 3)  # 10 steps, real over imagined
    assert "video:" in capsys.readouterr().out


@pytest.mark.slow
def test_real_vs_imagined_feeds_the_same_actions_from_the_same_frames(run_dir):
    from rem.training.restore import read_run
    from rem.viewer.modes import ViewOptions, build_view

    info = read_run(run_dir)
    view = build_view("real-vs-imagined", info, ViewOptions(seed=2, device="cpu"))
    real, imagined, anchors = [], [], []
    env_step, dream_step, dream_anchor = view.game.env.step, view.dream.step, view.dream.anchor
    view.game.env.step = lambda a: real.append(int(a)) or env_step(a)
    view.dream.step = lambda a: imagined.append(int(a)) or dream_step(a)
    view.dream.anchor = lambda p, o, a: (
        anchors.append((p.copy(), o.copy(), a)) or dream_anchor(p, o, a)
    )
    frames = rollout(view, 9)
    assert real == [0] + imagined and len(imagined) == 9  # NOOP for the 2nd context frame
    assert [f.action for f in frames[1:]] == imagined
    # both worlds start from the same frames: the model is anchored on the real reset frames
    first_prev, first_obs, first_action = anchors[0]
    assert first_action == 0 and (first_obs == frames[0].panels[0].image.transpose(2, 0, 1)).all()
    assert [p.label for p in frames[0].panels] == ["real game", "world model"]


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["agent", "agent-panels", "agent-wm", "episodes"])
def test_every_video_mode_exports(run_dir, tmp_path, mode):
    out = tmp_path / f"{mode}.mp4"
    argv = ["video", str(run_dir), "--mode", mode, "--out", str(out), "--steps", "4"]
    assert main([*argv, "--device", "cpu"]) == 0
    video = read_mp4(out)
    assert video.shape[0] == 5 and video.shape[1] % 16 == 0 and video.std() > 0
