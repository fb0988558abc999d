# Functions of the pilot's rules (workflow/rules/pilot.smk): the config check, snapshot
# folders, the wm-eval files and the solo run's command.


def check_pilot():
    """The wm-eval epochs must be snapshot epochs of every pilot run (checked when the pilot
    target is asked for: other configs take no snapshots)."""
    for v in VARIANTS.values():
        cfg = load_config(config["preset"], v.name, v.overrides)
        every, last = cfg.run.snapshot_every, cfg.run.epochs
        bad = [e for e in PILOT["wm_eval_epochs"] if not every or e % every or e > last]
        if bad:
            raise WorkflowError(
                f"invalid workflow config: pilot.wm_eval_epochs {bad} are not snapshot epochs "
                f"of variant {v.name} (run.snapshot_every={every}, run.epochs={last}); add the "
                "override run.snapshot_every=N dividing every wm-eval epoch (config/pilot.yaml)"
            )


def snapshot_dir(variant, game, seed, epoch):
    return f"{run_dir(variant, game, seed)}/snapshots/epoch_{int(epoch):06d}"


def pilot_wm_files():
    check_pilot()
    return [
        f"{PILOT_DIR}/pilot_world_model/{v}/{g}/{s}/epoch_{e}.json"
        for v, g, s in RUNS
        for e in PILOT["wm_eval_epochs"]
    ]


def pilot_solo_wanted():
    return PACK_K > 1 and PILOT["solo_epochs"] > 0


def solo_command():
    """`rem train` of the first pilot run's game and variant, alone, for solo_epochs."""
    variant, game, seed = RUNS[0]
    overrides = [*VARIANTS[variant].overrides, f"run.epochs={PILOT['solo_epochs']}"]
    overrides.append("run.snapshot_every=0")
    return shlex.join(
        ["rem", "train", "--game", game, "--seed", str(seed), "--variant", variant,
         "--run-dir", f"{PILOT_DIR}/solo/run", "--preset", str(config["preset"]), *overrides]
    )  # fmt: skip
