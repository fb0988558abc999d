"""`rem status` ETA of a run whose timed epochs predate some components: its early epochs are
cheap (only the tokenizer trains), so projecting them over the rest of the run underestimates
it; a finished run of the same variant says more."""

from __future__ import annotations

import json
import time

from rem.ops.eta import summarise
from rem.ops.records import RunStatus


def _run(seed: int, state: str, **kw) -> RunStatus:
    return RunStatus("rem", "Pong", seed, state, f"runs/rem/Pong/{seed}", **kw)


def test_early_run_takes_its_eta_from_finished_runs():
    done = _run(0, "completed", epoch=50, epochs=50, elapsed_s=3600.0, eta_s=0.0, all_train_from=21)
    early = _run(1, "running", epoch=2, epochs=50, epoch_s=8.0, eta_s=48 * 8.0, all_train_from=21)
    early.notes.append(
        "ETA is a lower bound until epoch 21, the first in which every component trains"
    )
    summary = summarise([done, early], None, time.time())
    assert early.eta_s == 3600.0 * (1 - 2 / 50)
    assert early.notes == ["ETA from the finished runs of this variant"]
    assert summary.run_hours_remaining == early.eta_s / 3600


def test_early_run_alone_keeps_its_lower_bound_and_does_not_set_the_estimate():
    early = _run(1, "running", epoch=2, epochs=50, epoch_s=8.0, eta_s=384.0, all_train_from=21)
    later = _run(2, "running", epoch=30, epochs=50, epoch_s=60.0, eta_s=1200.0, all_train_from=21)
    summarise([early, later], None, time.time())
    # the later run's full epochs (60 s x 50) give the variant's estimate, not 8 s x 50
    assert early.eta_s == 60.0 * 50 * (1 - 2 / 50)
    alone = _run(3, "running", epoch=2, epochs=50, epoch_s=8.0, eta_s=384.0, all_train_from=21)
    summarise([alone], None, time.time())
    assert alone.eta_s == 384.0


def test_runs_past_the_last_start_are_untouched():
    done = _run(0, "completed", epoch=50, epochs=50, elapsed_s=3600.0, eta_s=0.0, all_train_from=21)
    late = _run(1, "running", epoch=25, epochs=50, epoch_s=30.0, eta_s=750.0, all_train_from=21)
    summarise([done, late], None, time.time())
    assert late.eta_s == 750.0 and late.notes == []


def test_read_from_a_real_run_folder(quick_run_dir, tmp_path):
    """all_train_from comes from the run's own config (quick: the actor-critic trains from
    epoch 4); a run stopped at epoch 2 gets the lower-bound note."""
    import shutil

    from rem.ops.status import collect

    run = tmp_path / "runs" / "rem" / "Breakout" / "3"
    shutil.copytree(quick_run_dir, run)
    (run / "COMPLETED").unlink()
    (run / "scores.json").unlink(missing_ok=True)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    kept = [line for line in lines if json.loads(line).get("epoch", 0) <= 2]
    (run / "metrics.jsonl").write_text("\n".join(kept) + "\n")
    (st,) = collect(tmp_path / "runs").runs
    assert st.all_train_from == 4 and st.epoch == 2
    assert st.eta_s and st.eta_s > 0
    assert any(n.startswith("ETA is a lower bound until epoch 4") for n in st.notes)
