"""Episode records and the replay: bounds, FIFO eviction, incremental crash-safe save/load."""

import os
import shutil

import numpy as np
import pytest

import rem.data.replay as replay_module
from rem.data.episode import Episode
from rem.data.replay import Replay


def make_episode(length: int, ended: bool = True, tag: int = 0) -> Episode:
    obs = np.zeros((length, 3, 64, 64), dtype=np.uint8)
    obs[:, 0, 0, 0] = tag
    obs[:, 0, 0, 1] = np.arange(length) % 256
    ends = np.zeros(length, dtype=np.uint8)
    ends[-1] = ended
    return Episode(obs, np.arange(length) % 4, np.linspace(-1, 1, length), ends)


def assert_same(a: Episode, b: Episode) -> None:
    for name in ("observations", "actions", "rewards", "ends"):
        x, y = getattr(a, name), getattr(b, name)
        assert x.dtype == y.dtype and np.array_equal(x, y), name


def test_episode_types_and_truncation_after_first_end():
    ends = np.array([0, 1, 0, 1])
    ep = Episode(np.zeros((4, 3, 64, 64), np.uint8), [1, 2, 3, 0], [0.5, 1, 2, 3], ends)
    assert len(ep) == 2 and ep.ended and ep.total_return == 1.5
    assert (
        ep.actions.dtype == np.int64
        and ep.rewards.dtype == np.float32
        and ep.ends.dtype == np.uint8
    )
    with pytest.raises(ValueError, match="uint8"):
        Episode(np.zeros((2, 3, 64, 64), np.float32), [0, 0], [0, 0], [0, 0])
    with pytest.raises(ValueError, match="actions"):
        Episode(np.zeros((2, 3, 64, 64), np.uint8), [0], [0, 0], [0, 0])


def test_episode_concat_and_bytes_round_trip(tmp_path):
    head, tail = make_episode(3, ended=False), make_episode(2, tag=1)
    whole = head.concat(tail)
    assert len(whole) == 5 and whole.ended and not head.ended
    with pytest.raises(ValueError, match="already ended"):
        whole.concat(tail)
    (tmp_path / "e.npz").write_bytes(whole.to_bytes())
    assert_same(Episode.from_file(tmp_path / "e.npz"), whole)


def test_fifo_eviction_by_steps_keeps_the_newest():
    replay = Replay(max_steps=10)
    ids = [replay.add(make_episode(4, tag=i)) for i in range(3)]
    assert replay.ids() == ids[1:] and replay.num_steps == 8 and replay.num_evicted == 1
    big = replay.add(make_episode(25))  # alone over the bound: kept, everything older goes
    assert replay.ids() == [big] and replay.num_steps == 25


def test_eviction_by_bytes_and_extend():
    one = make_episode(1).nbytes
    replay = Replay(max_bytes=7 * one)
    first = replay.add(make_episode(3))
    current = replay.add(make_episode(2, ended=False))
    replay.extend(current, make_episode(2, ended=False))
    assert replay.ids() == [first, current] and len(replay[current]) == 4
    replay.extend(current, make_episode(1))  # 3 + 5 steps > 7: the oldest goes
    assert replay.ids() == [current] and replay[current].ended and replay.nbytes == 5 * one
    with pytest.raises(KeyError, match="not in the replay"):
        replay.extend(first, make_episode(1))
    with pytest.raises(ValueError, match="already ended"):
        replay.extend(current, make_episode(1))


def test_save_load_round_trip_is_incremental(tmp_path):
    replay = Replay(max_steps=12)
    for i in range(2):
        replay.add(make_episode(4, tag=i))
    current = replay.add(make_episode(2, ended=False, tag=9))
    assert replay.save(tmp_path) == 3
    assert replay.save(tmp_path) == 0  # nothing changed, nothing written

    loaded = Replay.load(tmp_path)
    assert loaded.ids() == replay.ids() and loaded.max_steps == 12
    for i in replay.ids():
        assert_same(loaded[i], replay[i])
    assert loaded.save(tmp_path) == 0  # a loaded replay knows its files

    replay.extend(current, make_episode(3, tag=9))  # 4 + 4 + 5 > 12: episode 0 evicted
    assert replay.save(tmp_path) == 1  # only the extended episode is rewritten
    files = sorted(p.name for p in (tmp_path / "episodes").iterdir())
    assert len(files) == 2 and not any("-00000000-" in f for f in files)
    again = Replay.load(tmp_path)
    assert again.ids() == replay.ids() and len(again[current]) == 5
    assert again.add(make_episode(1)) == current + 1  # ids are never reused


def test_crash_mid_save_leaves_the_previous_save_readable(tmp_path, monkeypatch):
    replay = Replay()
    current = replay.add(make_episode(3, ended=False))
    replay.save(tmp_path)
    before = {i: replay[i] for i in replay.ids()}
    replay.extend(current, make_episode(2))
    replay.add(make_episode(4, tag=5))

    class Killed(BaseException):
        """Stands for a kill (not an ordinary error) while writing the manifest."""

    def crash(*args, **kwargs):
        raise Killed

    real_json = replay_module.atomic_write_json
    monkeypatch.setattr(replay_module, "atomic_write_json", crash)
    with pytest.raises(Killed):
        replay.save(tmp_path)
    loaded = Replay.load(tmp_path)
    assert loaded.ids() == list(before)
    assert_same(loaded[current], before[current])

    # a crash while writing an episode file leaves the previous save intact too
    monkeypatch.setattr(replay_module, "atomic_write_json", real_json)
    replay.add(make_episode(2, tag=6))
    replay.add(make_episode(2, tag=7))
    calls = []
    real_write = replay_module.atomic_write_bytes

    def crash_second(path, data):
        calls.append(path)
        if len(calls) == 2:
            raise OSError("disk full")
        real_write(path, data)

    monkeypatch.setattr(replay_module, "atomic_write_bytes", crash_second)
    with pytest.raises(OSError):
        replay.save(tmp_path)
    assert_same(Replay.load(tmp_path)[current], before[current])

    monkeypatch.undo()  # the next good save completes and removes the debris
    replay.save(tmp_path)
    loaded = Replay.load(tmp_path)
    assert loaded.ids() == replay.ids() and len(list((tmp_path / "episodes").iterdir())) == 4


def test_load_errors_are_clear(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a saved replay"):
        Replay.load(tmp_path)
    replay = Replay()
    replay.add(make_episode(2))
    replay.save(tmp_path)
    next((tmp_path / "episodes").iterdir()).unlink()
    with pytest.raises(FileNotFoundError, match="damaged"):
        Replay.load(tmp_path)
    with pytest.raises(ValueError, match="max_steps"):
        Replay(max_steps=0)


def test_every_extension_gets_a_new_version_and_file_name():
    replay = Replay()
    current = replay.add(make_episode(2, ended=False))
    names = [replay._file_name(current)]
    for _ in range(3):
        replay.extend(current, make_episode(2, ended=False))
        names.append(replay._file_name(current))
    assert [int(n.rsplit("-v", 1)[1].removesuffix(".npz")) for n in names] == [0, 1, 2, 3]
    assert len(set(names)) == 4  # a name is never reused for other contents


def _extensions(replay: Replay, current: int, step: int) -> int:
    """Checkpoint interval `step` of the scenario: the open episode grows (twice in odd
    intervals), a finished one is added now and then; returns the open episode's id."""
    for _ in range(1 + step % 2):
        replay.extend(current, make_episode(3, ended=False, tag=step))
    if step % 2 == 0:
        replay.add(make_episode(2, tag=50 + step))
    return current


def test_episode_extended_across_checkpoints_resumes_from_each(tmp_path):
    """Issue 16: an episode extended before one checkpoint and again before the next kept a
    stale hard-linked file. Extend one episode across 5 checkpoints, resume from each."""
    from rem.training.checkpoint import load_checkpoint, save_checkpoint

    steps = 5

    def finish(replay: Replay, root, current: int, first_step: int) -> Replay:
        for step in range(first_step, steps):
            _extensions(replay, current, step)
            save_checkpoint(root, step + 1, {}, replay.save)
            _, folder = load_checkpoint(root)  # verified (sizes, hashes, replay lengths)
            loaded = Replay.load(folder / "replay")
            assert len(loaded[current]) == len(replay[current])
        return replay

    root = tmp_path / "straight"
    replay = Replay()
    replay.add(make_episode(4, tag=1))
    current = replay.add(make_episode(2, ended=False, tag=2))
    snapshots = []
    for step in range(steps):  # the uninterrupted run, copying each committed checkpoint
        _extensions(replay, current, step)
        save_checkpoint(root, step + 1, {}, replay.save)
        shutil.copytree(root, tmp_path / f"at_{step + 1}", copy_function=os.link)
        snapshots.append(step + 1)
    assert len(replay[current]) == 2 + 3 * 7  # extended 7 times, in all 5 intervals

    for epoch in snapshots:  # resume from each committed checkpoint and run to the end
        root_k = tmp_path / f"at_{epoch}"
        _, folder = load_checkpoint(root_k)
        resumed = finish(Replay.load(folder / "replay"), root_k, current, epoch)
        assert resumed.ids() == replay.ids(), epoch
        for i in replay.ids():
            assert_same(resumed[i], replay[i])
        _, folder = load_checkpoint(root_k)
        again = Replay.load(folder / "replay")
        for i in replay.ids():
            assert_same(again[i], replay[i])


def test_verify_saved_reads_headers_and_names_the_stale_file(tmp_path):
    replay = Replay()
    replay.add(make_episode(4))
    current = replay.add(make_episode(3, ended=False))
    replay.save(tmp_path)
    assert replay_module.verify_saved(tmp_path) == 7
    stale = tmp_path / "episodes" / replay._file_name(current)
    replay.extend(current, make_episode(2))
    # what the bug did: the manifest records 5 steps, the file under that name holds 3
    old_bytes = stale.read_bytes()
    replay.save(tmp_path)
    (tmp_path / "episodes" / replay._file_name(current)).write_bytes(old_bytes)
    with pytest.raises(replay_module.ReplayError, match=r"holds 3 steps, .* says 5"):
        replay_module.verify_saved(tmp_path)
    with pytest.raises(replay_module.ReplayError, match="holds 3 steps"):
        Replay.load(tmp_path)
    good = tmp_path / "episodes" / replay._file_name(0)
    good.write_bytes(good.read_bytes()[:-100])  # truncated
    with pytest.raises(replay_module.ReplayError, match="not a readable episode file"):
        replay_module.episode_file_length(good)
