"""The run folder and sweep contract, without torch.

- `layout`: a run's key (variant, game, seed), its folder `<runs>/<variant>/<game>/<seed>/`
  and the names of the files `rem train` writes there;
- `files`: reading those files (manifest, `metrics.jsonl`, scores);
- `sweep`: a workflow config loaded, merged, validated and expanded into its runs, the one
  expansion for the Snakefile, `rem status`, `rem plan` and the reports.

Writing a run folder is the trainer's (rem.training.run_dir); opening a run's agent needs
torch and is rem.training.restore's.
"""
