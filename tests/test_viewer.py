"""The viewer (rem play): key map, rendering, recording, the pygame loop, episode files.

Unit tests drive the pygame loop headless (SDL dummy driver) with a small deterministic
counting view so the loop's own logic (reset, pause, recording, save prompt, quit) is
checked in isolation; the end-to-end tests at the bottom run every `rem play` mode on a
quick-preset checkpoint (the `quick_run_dir` fixture in conftest.py).
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from rem.viewer.app import ScriptedEvents, Viewer, headless, key_events
from rem.viewer.episodes import episode_files, episode_from_frames, load_episode, save_episode
from rem.viewer.keymap import KEY_COMPONENTS, KeyMap
from rem.viewer.recording import Recorder, read_mp4
from rem.viewer.render import Frame, Panel, compose, overlay_status

headless()

BREAKOUT = ["NOOP", "FIRE", "RIGHT", "LEFT"]
MSPACMAN = ["NOOP", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT"]
FULL = [
    "NOOP", "FIRE", "UP", "RIGHT", "LEFT", "DOWN", "UPRIGHT", "UPLEFT", "DOWNRIGHT", "DOWNLEFT",
    "UPFIRE", "RIGHTFIRE", "LEFTFIRE", "DOWNFIRE", "UPRIGHTFIRE", "UPLEFTFIRE", "DOWNRIGHTFIRE",
    "DOWNLEFTFIRE",
]  # fmt: skip


# ----------------------------------------------------------------------------- key map


def _name(meanings, keys):
    return meanings[KeyMap(meanings).action(set(keys))]


def test_keymap_full_action_set():
    assert _name(FULL, []) == "NOOP"
    assert _name(FULL, ["space"]) == "FIRE"
    assert _name(FULL, ["w"]) == "UP"
    assert _name(FULL, ["up"]) == "UPFIRE"  # arrows = direction + fire (reference keymap)
    assert _name(FULL, ["w", "d"]) == "UPRIGHT"  # combinations build diagonals
    assert _name(FULL, ["t"]) == "UPRIGHT"
    assert _name(FULL, ["h"]) == "DOWNLEFTFIRE"
    assert _name(FULL, ["s", "a", "space"]) == "DOWNLEFTFIRE"
    assert _name(FULL, ["a", "d"]) == "NOOP"  # opposite directions cancel
    assert _name(FULL, ["x", "w"]) == "UP"  # unknown keys are ignored


def test_keymap_filters_to_the_game_actions():
    # Breakout has no RIGHTFIRE: the right arrow still moves right; up does nothing.
    assert _name(BREAKOUT, ["right"]) == "RIGHT"
    assert _name(BREAKOUT, ["space"]) == "FIRE"
    assert _name(BREAKOUT, ["w"]) == "NOOP"
    assert _name(BREAKOUT, ["u"]) == "RIGHT"  # UPRIGHTFIRE -> drop fire, then up
    # MsPacman has no FIRE at all.
    assert _name(MSPACMAN, ["up"]) == "UP"
    assert _name(MSPACMAN, ["u"]) == "UPRIGHT"
    assert _name(MSPACMAN, ["space"]) == "NOOP"
    assert _name(BREAKOUT, ["up"]) == "FIRE"  # UPFIRE -> no UP in Breakout, fire remains
    assert set(KeyMap(BREAKOUT).keys) == set(KEY_COMPONENTS) - {"w", "s"}


def test_keymap_help_lists_the_game_keys():
    from rem.cli.play import describe_keys

    assert describe_keys(BREAKOUT).startswith("space FIRE, a LEFT, d RIGHT, up FIRE")
    assert "w" not in describe_keys(BREAKOUT).split(", ")[0]


def test_keymap_every_combination_is_a_valid_action():
    for meanings in (BREAKOUT, MSPACMAN, FULL, ["NOOP", "FIRE", "RIGHT", "LEFT", "RIGHTFIRE"]):
        keymap = KeyMap(meanings)
        for keys in itertools.combinations(KEY_COMPONENTS, 2):
            assert 0 <= keymap.action(set(keys)) < len(meanings)


def test_keymap_rejects_a_non_ale_action_set():
    with pytest.raises(ValueError, match="NOOP"):
        KeyMap(["FIRE", "NOOP"])


# ----------------------------------------------------------------------------- rendering


def _image(h, w, value):
    return np.full((h, w, 3), value, dtype=np.uint8)


def test_compose_layout_is_fixed_and_panels_upscaled():
    frame = Frame([Panel("raw", _image(210, 160, 10)), Panel("obs", _image(64, 64, 200))])
    canvas = compose(frame, header=True)
    again = compose(Frame(frame.panels, step=99, action=3, action_name="LEFT", info="x"), True)
    assert canvas.shape == again.shape and canvas.dtype == np.uint8
    assert canvas.shape[1] == 2 * 160 + 2  # two panels at the largest panel's size
    # the 64x64 panel is stretched to 210x160 with nearest neighbour (flat colour stays flat)
    top = canvas.shape[0] - 14 - 210
    assert (canvas[top + 5 : top + 200, 170:320] == 200).all()
    assert (canvas[:20] != 0).any()  # header text drawn
    single = compose(Frame([Panel("obs", _image(64, 64, 7))]))
    assert single.shape == (192, 192, 3)  # integer upscale to >= 160 rows, no header/labels
    assert (overlay_status(single, "REC") != single).any()
    assert (single == 7).all()  # the overlay drew on a copy


# ----------------------------------------------------------------------------- recording


def test_recorder_writes_mp4_and_npy(tmp_path):
    recorder = Recorder(tmp_path / "rec", fps=10)
    recorder.add(_image(50, 60, 0))  # not recording: ignored
    assert recorder.toggle() is None and recorder.active
    frames = [_image(50, 60, 20 * i) for i in range(6)]
    for frame in frames:
        recorder.add(frame)
    path = recorder.toggle()
    assert not recorder.active and path.suffix == ".mp4"
    raw = np.load(path.with_suffix(".npy"))
    assert raw.shape == (6, 50, 60, 3) and (raw == np.stack(frames)).all()
    video = read_mp4(path)
    assert video.shape == (6, 64, 64, 3)  # padded to a multiple of 16
    assert abs(int(video[5, 10, 10, 0]) - 100) <= 4  # lossy, but the content is there
    assert recorder.toggle() is None and recorder.stop() is None  # empty recording: no file
    assert [p.name for p in (tmp_path / "rec").glob("*.mp4")] == [path.name]


# ----------------------------------------------------------------------------- the loop


class CountingView:
    """A deterministic stand-in game for the loop's own logic: the frame shows a counter,
    the action is the number of held keys, an episode lasts `length` steps."""

    episodic = True
    title = "counting"

    def __init__(self, length=5):
        self.length = length
        self.resets = 0
        self.keys: list[str] = []

    def _frame(self, action, done):
        obs = np.full((3, 64, 64), self.t * 10, dtype=np.uint8)
        return Frame(
            [Panel("counter", obs.transpose(1, 2, 0))],
            step=self.t,
            action=action,
            reward=1.0 if action is not None else 0.0,
            done=done,
            observation=obs,
        )

    def reset(self):
        self.resets += 1
        self.t = 0
        return self._frame(None, False)

    def step(self, held_keys):
        self.t += 1
        return self._frame(len(held_keys), self.t >= self.length)

    def key(self, name):
        self.keys.append(name)
        return None


def test_loop_records_pauses_and_resets(tmp_path):
    view = CountingView(length=100)
    script = {
        1: key_events(","),  # start recording
        3: key_events("."),  # pause
        5: key_events("."),  # resume
        6: key_events("d", up=False),  # hold d ...
        8: key_events("return"),  # reset
        9: key_events(","),  # stop recording
    }
    viewer = Viewer(
        view, fps=1000, recorder=Recorder(tmp_path, fps=15), events=ScriptedEvents(script),
        max_ticks=12,
    )  # fmt: skip
    result = viewer.run()
    assert result.ticks == 12
    assert result.steps == 12 - 2  # two paused ticks
    assert view.resets == 2 and view.keys == ["d"]  # viewer keys are not passed to the view
    assert len(result.recordings) == 1
    frames = np.load(result.recordings[0].with_suffix(".npy"))
    assert len(frames) == 8  # ticks 1..8 recorded
    # the counter froze while paused (ticks 3 and 4 repeat the frame of tick 2)
    assert (frames[1] == frames[2]).all() and (frames[2] == frames[3]).all()
    assert (frames[0] != frames[1]).any() and (frames[3] != frames[4]).any()


def test_loop_held_keys_reach_the_view(tmp_path):
    view = CountingView(length=100)
    seen = []
    step = view.step
    view.step = lambda held: seen.append(set(held)) or step(held)
    script = {0: key_events("w", up=False), 2: key_events("d", up=False), 3: key_events("w")}
    Viewer(view, fps=1000, events=ScriptedEvents(script), max_ticks=5).run()
    # a key tapped within one tick (w at tick 3: down+up) still counts for that tick
    assert seen == [{"w"}, {"w"}, {"w", "d"}, {"w", "d"}, {"d"}]


def test_loop_quits_on_escape_and_keeps_the_recording(tmp_path):
    script = {0: key_events(","), 4: key_events("escape")}
    result = Viewer(
        CountingView(), fps=1000, recorder=Recorder(tmp_path), events=ScriptedEvents(script)
    ).run()
    assert result.ticks == 4 and len(result.recordings) == 1


def test_loop_accepts_posted_pygame_events(tmp_path):
    import pygame

    view = CountingView(length=100)
    viewer = Viewer(view, fps=1000, max_ticks=50)
    pygame.display.init()
    for event in key_events("x", ".", "escape"):
        pygame.event.post(event)
    result = viewer.run()
    assert view.keys == ["x"] and result.ticks == 0  # escape ended the very first tick


def test_save_mode_asks_and_stores_the_episode(tmp_path):
    view = CountingView(length=3)
    saved = []

    def save(frames):
        saved.append(save_episode(tmp_path / "episodes", frames))
        return saved[-1]

    # Episode 1 ends at tick 2 (prompt up from then, nothing steps): y at tick 4 -> saved.
    # Episode 2 (reset and first step at tick 4) ends at tick 6: n at tick 8 -> discarded.
    script = {4: key_events("y"), 8: key_events("n")}
    viewer = Viewer(view, fps=1000, save_episode=save, events=ScriptedEvents(script), max_ticks=10)
    result = viewer.run()
    assert result.episodes_finished == 2 and result.saved_episodes == saved and len(saved) == 1
    assert result.steps == 3 + 3 + 2 and view.resets == 3
    episode = load_episode(saved[0])
    assert len(episode) == 3 and episode.ends.tolist() == [0, 0, 1]
    assert episode.observations[:, 0, 0, 0].tolist() == [0, 10, 20]  # frames before each action
    assert episode.rewards.tolist() == [1.0, 1.0, 1.0]
    assert episode_files(tmp_path / "episodes", "saved") == saved


def test_episode_from_frames_needs_a_step():
    with pytest.raises(ValueError, match="at least one step"):
        episode_from_frames([CountingView().reset()])


# ----------------------------------------------------------------------------- episode browser


@pytest.fixture
def episodes_dir(tmp_path):
    """Episodes written by the trainer's own writer (rem.training.media.EpisodeSaver)."""
    from rem.data.episode import Episode
    from rem.training.media import EpisodeSaver

    saver = EpisodeSaver(tmp_path, "test")
    for episode_id, length in ((3, 25), (7, 12)):
        obs = np.arange(length, dtype=np.uint8)[:, None, None, None] * np.ones(
            (1, 3, 64, 64), np.uint8
        )
        ends = np.zeros(length, np.uint8)
        ends[-1] = 1
        rewards = np.arange(length, dtype=np.float32)
        saver.save(Episode(obs, np.arange(length) % 4, rewards, ends), episode_id, epoch=10)
    return tmp_path


def test_browser_navigates_frames_episodes_and_sets(episodes_dir):
    from rem.viewer.views import EpisodeBrowserView

    view = EpisodeBrowserView(episodes_dir, BREAKOUT)
    assert view.kind == "test"  # the first set with episodes
    names = [p.name for p in view.files["test"]]
    assert names == ["episode_3_epoch_10.pt", "episode_7_epoch_10.pt", "best_episode_3_epoch_10.pt"]
    frame = view.reset()
    assert frame.step == 0 and frame.action_name == "NOOP" and frame.observation[0, 0, 0] == 0
    assert view.key("right").step == 1
    assert view.key("page up").step == 11
    assert view.key("page down").step == 1
    assert view.key("left").step == 0 and view.key("left").step == 0  # clamps at 0
    frame = view.key("page up")
    assert (
        frame.action == 10 % 4 and frame.reward == 10.0 and frame.episode_return == sum(range(11))
    )
    assert view.key("space") is not None  # play
    for _ in range(30):
        frame = view.step(frozenset())
    assert frame.step == 24 and frame.done and not view.playing  # stops on the last frame
    assert view.key("up").info.startswith("test 2/3 episode_7")
    assert view.key("down").info.startswith("test 1/3 episode_3")
    assert "no train episodes" in view.key("t").info and view.kind == "test"
    assert view.key("x") is None


def test_browser_without_episodes_says_how_to_get_them(tmp_path):
    from rem.viewer.views import EpisodeBrowserView

    with pytest.raises(FileNotFoundError, match="save_media"):
        EpisodeBrowserView(tmp_path, BREAKOUT)


def test_bad_episode_file_is_named(tmp_path):
    path = tmp_path / "episode_1.pt"
    torch.save({"observations": torch.zeros(2, 3, 64, 64, dtype=torch.uint8)}, path)
    with pytest.raises(ValueError, match="episode_1.pt"):
        load_episode(path)


# ----------------------------------------------------------------------------- end to end
# Every `rem play` mode on a quick-preset checkpoint, headless, with scripted keys.


@pytest.fixture(scope="module")
def run_dir(quick_run_dir, tmp_path_factory):
    """A private copy of the quick run (the viewer writes recordings and saved episodes)."""
    import shutil

    return shutil.copytree(quick_run_dir, tmp_path_factory.mktemp("viewer") / "run")


@pytest.mark.slow
@pytest.mark.parametrize(
    "mode", ["agent", "agent-panels", "human-wm", "agent-wm", "real-vs-imagined", "episodes"]
)
def test_play_mode_runs_headless_and_records(run_dir, mode, capsys):
    from rem.cli import main

    before = set((run_dir / "media" / "recordings").glob("*.mp4"))
    # tick 1: start recording; 3-5: hold d (moves in human-wm, a frame step in the browser);
    # tick 9: stop recording; 12 ticks in all
    script = "1:, 3:d 4:d 5:d 9:,"
    argv = ["play", str(run_dir), "--mode", mode, "--fps", "1000", "--header", "--device", "cpu"]
    assert main([*argv, "--max-ticks", "12", "--script", script]) == 0
    new = sorted(set((run_dir / "media" / "recordings").glob("*.mp4")) - before)
    assert len(new) == 1, capsys.readouterr()
    frames = np.load(new[0].with_suffix(".npy"))
    assert frames.shape[0] == 8 and frames.dtype == np.uint8  # ticks 1..8
    assert read_mp4(new[0]).shape[0] == 8
    assert str(new[0]) in capsys.readouterr().out


def _loaded(run_dir, mode, **changes):
    from rem.training.restore import read_run
    from rem.viewer.modes import ViewOptions, build_view

    info = read_run(run_dir)
    for key, value in changes.items():
        setattr(info.cfg.env, key, value)
    return info, build_view(mode, info, ViewOptions(seed=1, device="cpu"))


@pytest.mark.slow
def test_agent_panels_show_raw_observation_and_reconstruction(run_dir):
    _, view = _loaded(run_dir, "agent-panels")
    view.reset()
    frame = view.step(frozenset())
    assert [p.label for p in frame.panels] == ["raw frame", "64x64 observation", "reconstruction"]
    assert [p.image.shape for p in frame.panels] == [(210, 160, 3), (64, 64, 3), (64, 64, 3)]
    assert (frame.panels[1].image == frame.observation.transpose(1, 2, 0)).all()
    assert frame.action is not None and frame.action_name == view.meanings[frame.action]


@pytest.mark.slow
def test_human_in_world_model_keys_anchoring_and_block_budget(run_dir):
    """Keys drive both worlds; the model is re-anchored on real frames, with the context
    action as an action *index* (token = vocab + a, docs/protocol.md#changed), never beyond max_blocks."""
    info, view = _loaded(run_dir, "human-wm")
    wm = view.dream.world_model
    resets = []
    imagine_reset = wm.imagine_reset

    def spy(context_tokens, context_action):
        resets.append((context_tokens.clone(), context_action.clone(), view.game.obs.copy()))
        state = imagine_reset(context_tokens, context_action)
        resets[-1] += (state.pending.clone(),)
        return state

    wm.imagine_reset = spy
    real_actions = []
    env_step = view.game.env.step
    view.game.env.step = lambda a: real_actions.append(int(a)) or env_step(a)
    right = info.meanings.index("RIGHT")

    view.reset()
    budget = info.cfg.world_model.max_blocks - info.cfg.world_model.context_length
    frames = [view.step(frozenset({"d"})) for _ in range(2 * budget + 1)]
    assert all(f.action == right and f.action_name == "RIGHT" for f in frames)
    assert real_actions == [0] + [right] * len(frames)  # NOOP to get 2 frames, then the keys
    # anchored at reset, then after every `budget` steps
    assert len(resets) == 3 and view.dream.anchors == 3
    assert [f.extra["anchored"] for f in frames] == [
        i > 0 and i % budget == 0 for i in range(len(frames))
    ]
    assert view.dream.max_blocks_used == info.cfg.world_model.max_blocks
    k = info.cfg.tokenizer.tokens_per_frame
    vocab = info.cfg.tokenizer.vocab_size
    for i, (tokens, action, real_obs, pending) in enumerate(resets):
        assert action.tolist() == ([0] if i == 0 else [right])  # the real previous action
        assert pending[0, k].item() == vocab + action.item()  # offset action token
        # the newest context frame is the real game's current frame
        assert torch.equal(tokens[0, 1], view.dream.encode(real_obs[None])[0])


@pytest.mark.slow
def test_agent_in_world_model_acts_on_imagined_frames(run_dir):
    _, view = _loaded(run_dir, "agent-wm")
    seen = []
    act = view.policy.act
    view.policy.act = lambda obs: seen.append(obs.copy()) or act(obs)
    view.reset()
    for _ in range(3):
        imagined = view.imagined.copy()
        frame = view.step(frozenset())
        assert (seen[-1][0] == imagined).all()  # the agent saw the imagined frame
        assert [p.label for p in frame.panels] == ["world model", "real game"]
        assert (frame.observation == frame.panels[0].image.transpose(2, 0, 1)).all()


@pytest.mark.slow
def test_save_mode_keeps_a_real_episode(run_dir):
    from rem.viewer.episodes import save_episode as write

    # A short time limit (40 raw frames = 10 agent steps) so the test game ends quickly.
    info, view = _loaded(run_dir, "agent", test_max_raw_frames=40)
    saved = []
    viewer = Viewer(
        view,
        fps=1000,
        save_episode=lambda frames: saved.append(write(info.episodes_dir, frames)) or saved[-1],
        events=ScriptedEvents({12: key_events("y")}),
        max_ticks=13,
    )
    result = viewer.run()
    assert result.episodes_finished == 1 and len(saved) == 1
    episode = load_episode(saved[0])
    assert 5 <= len(episode) <= 10 and episode.ends[-1] == 1
    assert saved[0].parent == run_dir / "media" / "episodes" / "saved"
    # the browser lists kept episodes as their own set
    _, browser = _loaded(run_dir, "episodes")
    assert browser.key("s").info.startswith("saved 1/1")


def test_play_errors_are_clear(tmp_path, capsys):
    from rem.cli import main

    assert main(["play", str(tmp_path / "missing")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(["play", str(tmp_path)]) == 2
    assert "manifest.json" in capsys.readouterr().err
