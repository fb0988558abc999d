"""The pilot report (config/pilot.yaml, README "Before a sweep: the pilot"): after the first
100 epochs of a few paper-preset runs, does this installation learn, and what will the full
sweep cost?

Inputs (the `pilot` target of the workflow writes them all):
- run folders `<runs>/<variant>/<game>/<seed>/` of `rem train` with `run.snapshot_every`
  (metrics.jsonl, scores.json, snapshots/);
- `rem wm-eval --json` of each run at the epochs of `pilot.wm_eval_epochs`
  (`<results>/pilot/world_model/<game>/<seed>/epoch_<E>.json`);
- random-policy returns `<results>/random/<game>.json` (`rem evaluate --policy random`);
- the published REM runs (`results/published/REM.json`, HUMAN.json, RANDOM.json).

`build` computes one `Pilot` object (per game: tokenizer reconstruction error over epochs,
world-model figures per epoch, test returns with CIs, random and published bands; the go /
no-go rules; the measured cost per phase); `write` renders `pilot.md`, `pilot.json` and the
figures. The cost part and the disk figures come from the caller (rem.ops.plan), which may
load torch; this module stays free of it. No published material gives learning curves
partway through training (the score files hold final scores only), so the rules carry their
own milestones, each with its reason (RULES).
"""

from __future__ import annotations

import json
import math
import statistics
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rem.config import Config
from rem.results.reports.learning import WM_FIELDS, load_random, mean_ci, read_metrics
from rem.runs import layout
from rem.runs.files import read_manifest

PHASES = ("collection", "tokenizer", "world_model", "actor_critic")
PASSED, FAILED, NOT_YET = "passed", "failed", "not yet"
TOKENIZER_DROP = 0.75  # the error at the first wm-eval epoch over the first evaluation's


class PilotReportError(ValueError):
    """An input of the pilot report is missing or malformed; the message names the fix."""


# ----------------------------------------------------------------------------- game choice


def rank_games(published_dir: str | Path) -> list[tuple[str, float, float]]:
    """The games by the published REM runs' worst-seed human-normalised score, best first:
    (game, worst seed, mean). A high worst seed = every published seed learned the game."""
    pub = Path(published_dir)
    runs = json.loads((pub / "REM.json").read_text())
    human = json.loads((pub / "HUMAN.json").read_text())
    random = json.loads((pub / "RANDOM.json").read_text())
    rows = []
    for game, scores in runs.items():
        lo, hi = float(random[game][0]), float(human[game][0])
        hns = [(s - lo) / (hi - lo) for s in scores]
        rows.append((game, min(hns), statistics.mean(hns)))
    return sorted(rows, key=lambda r: r[1], reverse=True)


def published_band(published_dir: str | Path, game: str) -> dict[str, float]:
    """The published REM runs' final raw scores of a game: mean, min, max."""
    scores = json.loads((Path(published_dir) / "REM.json").read_text())[game]
    return {"mean": statistics.mean(scores), "min": min(scores), "max": max(scores)}


# ----------------------------------------------------------------------------- cost


def phase_seconds(rows: list[dict[str, Any]], cfg: Config) -> dict[str, float]:
    """Median seconds per epoch of each phase over the epochs in which it ran (a component
    trains after its start epoch, collection until its stop epoch), so the cheap early
    epochs do not set any phase's figure. A phase that never ran is absent."""
    starts = {
        name: getattr(cfg.training, name).start_after_epochs
        for name in ("tokenizer", "world_model", "actor_critic")
    }
    out = {}
    for phase in PHASES:
        if phase == "collection":
            ran = [r for r in rows if r["epoch"] <= cfg.collection.stop_after_epochs]
        else:
            ran = [r for r in rows if r["epoch"] > starts[phase]]
        times = [r[f"time/{phase}"] for r in ran if f"time/{phase}" in r]
        if times:
            out[phase] = statistics.median(times)
    return out


def evaluation_episode_seconds(rows: list[dict[str, Any]]) -> float | None:
    """Median seconds of one test episode at the periodic evaluations (evaluation time /
    episodes played), the unit of the evaluations and of the final one."""
    per = [
        r["time/evaluation"] / len(r["test/returns"])
        for r in rows
        if r.get("test/returns") and r.get("time/evaluation")
    ]
    return statistics.median(per) if per else None


def run_seconds(
    cfg: Config, per_phase: dict[str, float], per_eval: float, eval_episode_s: float | None = None
) -> float:
    """Seconds of one run of `cfg` in measured units: each phase's seconds per epoch x the
    epochs it runs in this schedule, plus every evaluation (`per_eval` each, or episodes x
    `eval_episode_s`) and the final evaluation."""
    e, ts = cfg.run.epochs, cfg.training
    epochs = {
        "collection": min(e, cfg.collection.stop_after_epochs),
        "tokenizer": max(0, e - ts.tokenizer.start_after_epochs),
        "world_model": max(0, e - ts.world_model.start_after_epochs),
        "actor_critic": max(0, e - ts.actor_critic.start_after_epochs),
    }
    total = sum(per_phase.get(p, 0.0) * n for p, n in epochs.items())
    evaluations = e // cfg.evaluation.every
    if eval_episode_s is not None:
        episodes = evaluations * cfg.evaluation.episodes + cfg.evaluation.final_episodes
        return total + episodes * eval_episode_s
    return (
        total + (evaluations + cfg.evaluation.final_episodes / cfg.evaluation.episodes) * per_eval
    )


# ----------------------------------------------------------------------------- one game


@dataclass
class GameResult:
    game: str
    seed: int
    reconstruction: list[tuple[int, float]]  # (epoch, tokenizer eval reconstruction loss)
    test_returns: list[tuple[int, float, float, float]]  # (epoch, mean, lo, hi)
    final: tuple[float, float, float, int] | None  # mean, lo, hi, episodes
    random: tuple[float, float, float, int]
    world_model: dict[int, dict[str, float]]  # epoch -> WM_FIELDS figures
    published: dict[str, float]
    epochs_done: int


def _ci(returns: list[float]) -> tuple[float, float, float]:
    return mean_ci(returns) if len(returns) > 1 else (returns[0],) * 3


def _wm_figures(path: Path) -> dict[str, float]:
    data = json.loads(path.read_text())
    out = {}
    for name, keys in WM_FIELDS.items():
        node: Any = data
        for key in keys:
            node = node.get(key) if isinstance(node, dict) else None
        out[name] = float(node) if isinstance(node, int | float) else math.nan
    return out


def load_game(run: Path, wm_dir: Path, random: list[float], published_dir: Path) -> GameResult:
    """One pilot run's figures (finished or not: the rules then say `not yet`)."""
    game, seed = run.parent.name, int(run.name)
    rows = [r for r in read_metrics(run / layout.METRICS) if not r.get("final")]
    recon = [
        (r["epoch"], r["tokenizer/eval/reconstruction_loss"])
        for r in rows
        if "tokenizer/eval/reconstruction_loss" in r
    ]
    tests = [(r["epoch"], *_ci(r["test/returns"])) for r in rows if r.get("test/returns")]
    final = None
    if (run / layout.SCORES).is_file():
        returns = [float(x) for x in json.loads((run / layout.SCORES).read_text())["returns"]]
        final = (*_ci(returns), len(returns))
    wm = {}
    for path in sorted(wm_dir.glob("epoch_*.json")):
        wm[int(path.stem.split("_")[1])] = _wm_figures(path)
    return GameResult(
        game,
        seed,
        recon,
        tests,
        final,
        (*_ci(random), len(random)),
        wm,
        published_band(published_dir, game),
        max((r["epoch"] for r in rows), default=0),
    )


# ----------------------------------------------------------------------------- rules


@dataclass
class Rule:
    name: str
    reason: str
    status: str = NOT_YET
    evidence: str = ""


def _wm_rule(games, epoch, name, reason, test, need_all: bool) -> Rule:
    rule = Rule(name, reason)
    have = [g for g in games if epoch in g.world_model]
    if len(have) < len(games):
        rule.evidence = f"wm-eval at epoch {epoch}: {len(have)} of {len(games)} games"
        return rule
    results = {g.game: test(g.world_model[epoch]) for g in games}
    ok = all(results.values()) if need_all else any(results.values())
    rule.status = PASSED if ok else FAILED
    rule.evidence = ", ".join(f"{g} {'yes' if v else 'no'}" for g, v in results.items())
    return rule


def _tokenizer_rule(games: list[GameResult], by: int) -> Rule:
    rule = Rule(
        f"by epoch {by} the tokenizer's reconstruction error is at most {TOKENIZER_DROP:.0%} of "
        "its first evaluation's in every game",
        "the tokenizer trains alone first; every later component learns on its tokens, so "
        "if it does not learn nothing after it can",
    )
    if any(g.epochs_done < by or len(g.reconstruction) < 2 for g in games):
        rule.evidence = "not enough evaluations yet"
        return rule
    ratios = {}
    for g in games:
        upto = [v for e, v in g.reconstruction if e <= by]
        if len(upto) < 2:  # the first evaluation is the milestone's: take the next one
            upto = [v for _, v in g.reconstruction[:2]]
        ratios[g.game] = upto[-1] / upto[0] if len(upto) > 1 and upto[0] else math.nan
    rule.status = PASSED if all(r <= TOKENIZER_DROP for r in ratios.values()) else FAILED
    rule.evidence = ", ".join(f"{g} x{r:.2f}" for g, r in ratios.items())
    return rule


def _return_rule(games: list[GameResult], by: int) -> Rule:
    rule = Rule(
        f"by epoch {by} at least one game is above the random policy with disjoint 95% CIs",
        "the whole loop (collection, world model, imagination, actor-critic) works end to "
        "end only if some policy beats chance; the chosen games are the ones every published "
        "seed learned",
    )
    if any(g.final is None for g in games):
        rule.evidence = "final evaluation not done yet"
        return rule
    above = {g.game: g.final[1] > g.random[2] for g in games}
    rule.status = PASSED if any(above.values()) else FAILED
    rule.evidence = ", ".join(
        f"{g.game} {g.final[0]:.1f} [{g.final[1]:.1f}, {g.final[2]:.1f}] vs random "
        f"{g.random[0]:.1f} [{g.random[1]:.1f}, {g.random[2]:.1f}]"
        for g in games
    )
    return rule


def rules(games: list[GameResult], wm_epochs: list[int], last: int) -> list[Rule]:
    """The go / no-go rules, each passed, failed or not yet."""
    mid = min((e for e in wm_epochs if e < last), default=last, key=lambda e: abs(e - 50))
    return [
        _tokenizer_rule(games, min(wm_epochs)),
        _wm_rule(
            games,
            mid,
            f"by epoch {mid} the world model beats repeating the previous frame (next-frame "
            "token accuracy) in every game",
            "most of a frame is the previous frame; a world model below that baseline "
            "imagines worse futures than a copy, and the actor-critic learns from them",
            lambda w: w["token_acc"] > w["token_acc_repeat"],
            need_all=True,
        ),
        _wm_rule(
            games,
            last,
            f"by epoch {last} the world model uses the actions (accuracy above the same model "
            "with shuffled actions) in at least one game",
            "a world model that ignores the actions cannot tell the policy which action "
            "pays; the figure with shuffled actions isolates that",
            lambda w: w["token_acc"] > w["token_acc_shuffled"],
            need_all=False,
        ),
        _wm_rule(
            games,
            last,
            f"by epoch {last} the reward head beats the majority class (reward F1) in at "
            "least one game",
            "the actor-critic learns only from imagined rewards; a reward head at the "
            "majority class imagines none",
            lambda w: w["reward_f1"] > w["reward_f1_majority"],
            need_all=False,
        ),
        _return_rule(games, last),
    ]


def verdict(rule_list: list[Rule]) -> str:
    statuses = {r.status for r in rule_list}
    if FAILED in statuses:
        return "NO-GO"
    return "GO" if statuses == {PASSED} else "NOT YET"


# ----------------------------------------------------------------------------- the report


@dataclass
class Pilot:
    preset: str
    games: list[GameResult]
    rules: list[Rule]
    verdict: str
    wm_epochs: list[int]
    cost: dict[str, Any] = field(default_factory=dict)  # measured units + the full config
    disk: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "runs": len(self.games)}


def build(
    runs: list[Path],
    wm_root: Path,
    random_dir: Path,
    published_dir: Path,
    wm_epochs: list[int],
    last_epoch: int,
) -> Pilot:
    """Every pilot run's figures and the rules; cost and disk are filled in by the caller."""
    if not runs:
        raise PilotReportError("no pilot run folders; run `snakemake pilot` first")
    games_seen = sorted({r.parent.name for r in runs})
    random = load_random(random_dir, games_seen)
    games = []
    for run in runs:
        if not (run / layout.METRICS).is_file():
            raise PilotReportError(f"{run} has no metrics.jsonl: the run has not started")
        wm_dir = wm_root / run.parent.name / run.name
        games.append(load_game(run, wm_dir, random[run.parent.name], published_dir))
    rule_list = rules(games, sorted(wm_epochs), last_epoch)
    preset = "?"
    manifest = read_manifest(runs[0])
    if manifest is not None:
        preset = str(manifest.get("preset", "?"))
    return Pilot(preset, games, rule_list, verdict(rule_list), sorted(wm_epochs))
