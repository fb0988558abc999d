"""The Snakemake workflow without running jobs: DAG sizes, bad-input errors, lint, format.

Every Snakemake call here is a dry run in a temporary working directory (`--directory`), so
nothing is written into the repository.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SNAKEFILE = ROOT / "Snakefile"
QUICK = ROOT / "config" / "quick.yaml"


def snakemake(workdir: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snakemake", "--snakefile", str(SNAKEFILE)]
    cmd += ["--directory", str(workdir), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def job_counts(text: str) -> dict[str, int]:
    """Parse Snakemake's `Job stats` table."""
    counts = {}
    block = text.split("Job stats:", 1)[1]
    for line in block.splitlines()[3:]:
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            break
        counts[parts[0]] = int(parts[1])
    return counts


def train_targets(text: str) -> list[str]:
    return re.findall(r"output: (\S+/COMPLETED)", text)


def write_config(tmp_path: Path, data: dict, base: Path = QUICK) -> Path:
    """`base` with the top-level keys of `data` replaced."""
    cfg = yaml.safe_load(base.read_text())
    cfg.update(data)
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def dry_run_error(tmp_path: Path, data: dict) -> str:
    proc = snakemake(tmp_path, "-n", "--configfile", str(write_config(tmp_path, data)), check=False)
    assert proc.returncode != 0, f"dry run accepted {data}:\n{proc.stdout}"
    assert "Job stats" not in proc.stdout + proc.stderr, "the DAG was built despite a bad config"
    return proc.stdout + proc.stderr


# --------------------------------------------------------------------------------- DAG


def test_paper_protocol_dry_run_lists_exactly_330_training_jobs(tmp_path):
    # CPU seconds, not wall time: CI machines and shared workstations are often oversubscribed.
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = snakemake(tmp_path, "-n")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
    counts = job_counts(proc.stdout)
    assert counts["train"] == 330
    assert counts["collect"] == 1 and counts["report"] == 1
    assert "evaluate" not in counts  # the trainer's final evaluation is the default score
    targets = train_targets(proc.stdout)
    assert len(targets) == len(set(targets)) == 330
    per_variant: dict[str, set] = {}
    for path in targets:
        _, variant, game, seed, _ = path.split("/")
        per_variant.setdefault(variant, set()).add((game, int(seed)))
    assert {v: len(r) for v, r in per_variant.items()} == {
        "rem": 130,
        "no-pop": 40,
        "separate-wm-embeddings": 40,
        "4x4-tokenizer": 40,
        "no-latent-ac": 40,
        "no-action-input": 40,
    }
    from rem.games import ABLATION_GAMES, ATARI_100K_GAMES

    assert {g for g, _ in per_variant["rem"]} == set(ATARI_100K_GAMES)
    assert {g for g, _ in per_variant["no-pop"]} == set(ABLATION_GAMES)
    assert {s for _, s in per_variant["rem"]} == {0, 1, 2, 3, 4}
    assert cpu < 20, f"the paper dry run took {cpu:.1f} CPU seconds"


def test_quick_dry_run_and_train_command(tmp_path):
    proc = snakemake(tmp_path, "-n", "-p", "--configfile", str(QUICK))
    counts = job_counts(proc.stdout)
    assert counts["train"] == 8  # 2 variants x 2 games x 2 seeds
    cmd = next(
        line for line in proc.stdout.splitlines() if "rem train --game Breakout --seed 1" in line
    )
    assert "--variant no-action-input" in cmd or "--variant rem" in cmd
    assert "--preset quick" in cmd and "--run-dir runs/quick/" in cmd
    assert "with_gpu.py --slots 0 --runs-per-gpu 1" in cmd  # no GPU; packing: test_packing.py


def test_reevaluation_adds_evaluate_jobs_only(tmp_path):
    path = write_config(tmp_path, {"evaluation": {"episodes": 5, "seed": 7}})
    proc = snakemake(tmp_path, "-n", "-p", "--configfile", str(path))
    counts = job_counts(proc.stdout)
    assert counts["evaluate"] == 8 and counts["train"] == 8
    line = next(x for x in proc.stdout.splitlines() if "rem evaluate --checkpoint" in x)
    assert "--episodes 5" in line and re.search(r"--seed (7|8) ", line)


def test_per_variant_seeds_and_overrides(tmp_path):
    variants = [
        {"name": "rem", "games": ["Pong"], "seeds": [3], "overrides": ["run.epochs=2"]},
        {"name": "no-pop", "games": ["Breakout", "Pong"]},
    ]
    proc = snakemake(
        tmp_path, "-n", "-p", "--configfile", str(write_config(tmp_path, {"variants": variants}))
    )
    assert job_counts(proc.stdout)["train"] == 1 + 2 * 2
    assert "--seed 3 --variant rem --run-dir runs/quick/rem/Pong/3 --preset quick run.epochs=2" in (
        proc.stdout
    )


def test_slurm_and_local_profiles_parse(tmp_path):
    proc = snakemake(tmp_path, "-n", "--profile", str(ROOT / "profiles" / "local"))
    assert job_counts(proc.stdout)["train"] == 330
    slurm = yaml.safe_load((ROOT / "profiles" / "slurm" / "config.yaml").read_text())
    assert slurm["executor"] == "slurm"
    assert slurm["slurm-status-command"] == "squeue" and slurm["slurm-no-account"] is True
    # Every plugin option the profile sets exists in the installed plugin.
    help_text = subprocess.run(
        [sys.executable, "-m", "snakemake", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for key in slurm:
        if key.startswith("slurm-"):
            assert f"--{key}" in help_text, f"profiles/slurm sets unknown option {key}"


# --------------------------------------------------------------------------------- bad input


def test_bad_variants_stop_before_any_job_with_key_and_fix(tmp_path):
    variants = [
        {"name": "rem", "games": ["Pong", "Pongg"]},  # unknown game
        {"name": "no-such-ablation", "games": ["Pong"]},  # no override file
        {"name": "no-pop", "games": ["Pong"], "overrides": ["world_model.num_layerz=3"]},
    ]
    text = dry_run_error(tmp_path, {"variants": variants})
    # every problem is reported at once, each with its key and a fix
    assert "variants[0] (name: rem).games" in text and "Pongg" in text
    assert "Breakout" in text  # the valid names are listed
    assert "variants[1] (name: no-such-ablation)" in text
    assert "create config/variants/no-such-ablation.yaml" in text
    assert "variants[2] (name: no-pop)" in text and "world_model.num_layerz" in text
    assert "num_layers" in text and "correct the key in config/variants/no-pop.yaml" in text


def test_paper_config_with_iris_plans_130_more_training_jobs(tmp_path):
    cfg = yaml.safe_load((ROOT / "config" / "config.yaml").read_text())
    variants = cfg["variants"] + [{"name": "iris", "agent": "iris", "games": "atari100k"}]
    path = tmp_path / "iris.yaml"
    path.write_text(yaml.safe_dump({"variants": variants}))
    proc = snakemake(tmp_path, "-n", "-p", "--cores", "16", "--configfile", str(path))
    assert job_counts(proc.stdout)["train"] == 330 + 130
    iris = [t for t in train_targets(proc.stdout) if t.startswith("runs/iris/")]
    assert len(iris) == 130 and len({t.split("/")[2] for t in iris}) == 26
    commands = [line for line in proc.stdout.splitlines() if "rem train" in line]
    assert all(("--variant iris" in c) == ("--preset iris " in c) for c in commands)
    assert sum("--preset paper " in c for c in commands) == 330
    # IRIS's own job resources (config.yaml agents.iris.resources) over the top-level ones
    assert "runtime=7200" in proc.stdout and "runtime=900" in proc.stdout


def test_quick_agents_dag_and_agent_mistakes(tmp_path):
    proc = snakemake(
        tmp_path, "-n", "-p", "--configfile", str(ROOT / "config" / "quick_agents.yaml")
    )
    assert job_counts(proc.stdout)["train"] == 4
    assert (
        "--variant iris --run-dir runs/quick_agents/iris/Breakout/0 --preset iris_quick"
        in proc.stdout
    )
    text = dry_run_error(tmp_path, {"variants": [{"name": "iris", "games": ["Pong"]}]})
    assert "variants[0] (name: iris)" in text and "use --preset iris or iris_quick" in text
    text = dry_run_error(
        tmp_path, {"variants": [{"name": "iris", "agent": "storm", "games": ["Pong"]}]}
    )
    assert "agent storm has no preset" in text


def test_schema_errors_name_the_key_and_the_fix(tmp_path):
    bad = {
        "seeds": [0, "one"],
        "seed": [0],  # unknown top-level key
        "variants": [{"name": "rem", "games": "atari26"}],  # unknown game set
    }
    text = dry_run_error(tmp_path, bad)
    assert "config key seeds[1]: 'one' is not of type 'integer'" in text
    assert "fix: a list of distinct non-negative integers" in text
    assert "'seed' was unexpected" in text
    assert "config key variants[0].games" in text and "atari100k" in text and "ablation8" in text


def test_seeds_given_as_a_string(tmp_path):
    text = dry_run_error(tmp_path, {"seeds": "0,1"})
    assert "config key seeds: '0,1' is not of type 'array'" in text and "fix:" in text


# --------------------------------------------------------------------------------- hygiene


def test_lint_clean(tmp_path):
    proc = snakemake(tmp_path, "--lint")
    assert "Congratulations, your workflow is in a good condition" in proc.stdout + proc.stderr


def test_snakefmt_clean():
    files = [str(SNAKEFILE), *map(str, sorted((ROOT / "workflow" / "rules").glob("*.smk")))]
    proc = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", *files], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


# --------------------------------------------------------------------------------- helpers


def _load_script(name: str):
    spec = importlib.util.spec_from_file_location(
        name, ROOT / "workflow" / "scripts" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_collect_scores_table(tmp_path):
    collect = _load_script("collect_scores")
    a = tmp_path / "a.json"
    # a `rem evaluate --checkpoint` file: `seed` is the evaluation's, `run_seed` the run's
    a.write_text(
        json.dumps({"game": "Pong", "seed": 123, "run_seed": 0, "returns": [-20.7, 0.0, 20.7]})
    )
    b = tmp_path / "b.json"
    b.write_text(json.dumps({"game": "Breakout", "variant": "rem", "seed": 1, "returns": [31.8]}))
    out = tmp_path / "scores.csv"
    published = ROOT / "results" / "published"
    rc = collect.main(
        ["--published", str(published), "--out", str(out), f"x:Pong:0:{a}", f"rem:Breakout:1:{b}"]
    )
    assert rc == 0
    rows = list(csv.DictReader(out.open()))
    assert [r["variant"] for r in rows] == ["rem", "x"]  # sorted
    assert list(rows[0]) == ["variant", "game", "seed", "raw_score", "hns", "episodes"]
    random_, human = (
        json.loads((published / f).read_text()) for f in ("RANDOM.json", "HUMAN.json")
    )
    want = (31.8 - random_["Breakout"][0]) / (human["Breakout"][0] - random_["Breakout"][0])
    assert float(rows[0]["hns"]) == pytest.approx(want)
    assert float(rows[1]["raw_score"]) == pytest.approx(0.0) and rows[1]["episodes"] == "3"


def test_collect_scores_rejects_a_mismatched_file(tmp_path, capsys):
    collect = _load_script("collect_scores")
    a = tmp_path / "a.json"
    a.write_text(json.dumps({"game": "Breakout", "seed": 0, "returns": [1.0]}))
    published = str(ROOT / "results" / "published")
    rc = collect.main(["--published", published, "--out", str(tmp_path / "o.csv"), f"r:Pong:0:{a}"])
    assert rc == 1 and "game is 'Breakout' but the run is 'Pong'" in capsys.readouterr().err
    a.write_text(json.dumps({"game": "Pong", "returns": []}))
    rc = collect.main(["--published", published, "--out", str(tmp_path / "o.csv"), f"r:Pong:0:{a}"])
    assert rc == 1 and "no 'returns'" in capsys.readouterr().err


def test_with_gpu_gives_each_job_its_own_gpu(tmp_path):
    with_gpu = _load_script("with_gpu")
    # acquire(slots, slots per GPU, GPU ids, ...); several runs per GPU: tests/test_packing.py
    first, h1 = with_gpu.acquire(1, 1, [0, 1], tmp_path, timeout_s=0)
    second, h2 = with_gpu.acquire(1, 1, [0, 1], tmp_path, timeout_s=0)
    assert first != second and sorted(first + second) == [(0, 0), (1, 0)]
    with pytest.raises(SystemExit, match="no 1 whole GPU"):
        with_gpu.acquire(1, 1, [0, 1], tmp_path, timeout_s=0)
    for handle in h1:
        handle.close()  # a finished job frees its GPU
    assert with_gpu.acquire(1, 1, [0, 1], tmp_path, timeout_s=0)[0] == first


def test_with_gpu_zero_runs_the_command_unchanged(tmp_path):
    script = ROOT / "workflow" / "scripts" / "with_gpu.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--gpus", "0", "--", sys.executable, "-c", "print('ok')"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert proc.stdout.strip() == "ok"
