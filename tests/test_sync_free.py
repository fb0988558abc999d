"""Training steps never read the device from the host (no host-device sync inside a
training step). The recorder of `benchmarks/checks.py` lists every call that would
synchronise a CUDA device; on CPU it tells what would, so this runs in CI."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # benchmarks/ is a repository folder, not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.checks import SyncRecorder  # noqa: E402
from benchmarks.cli import main  # noqa: E402
from rem.config import TokenizerConfig  # noqa: E402
from rem.models.tokenizer import Tokenizer  # noqa: E402
from rem.training.step import optimizer_step, summarise_phase  # noqa: E402


def _tiny_tokenizer() -> Tokenizer:
    cfg = TokenizerConfig(
        vocab_size=16, embed_dim=8, base_channels=8, z_channels=16, perceptual_loss=False
    )
    return Tokenizer(cfg)


def test_every_training_step_kind_is_sync_free(tmp_path):
    out = tmp_path / "checks.json"
    assert main(["checks", "--quick", "--device", "cpu", "--json", str(out), "--no-table"]) == 0
    derived = json.loads(out.read_text())["results"][0]["derived"]
    totals = derived["runtime_sync_totals_in_rem"]
    assert set(totals) == {
        "tokenizer_train_step",
        "actor_critic_train_step",
        "world_model_train_step_pop",
        "world_model_train_step_nopop",
        "imagination_rollout_pop",
        "imagination_rollout_nopop",
    }
    assert totals == dict.fromkeys(totals, 0), derived["runtime_sync_calls_in_rem"]


def test_the_recorder_sees_a_sync_in_rem_code():
    """Positive control: the float-metrics path of a loss does read the device."""
    torch.manual_seed(0)
    tok = _tiny_tokenizer()
    batch = {"observations": torch.rand(2, 1, 3, 64, 64)}
    rec = SyncRecorder()
    with rec:
        tok.compute_loss(batch)
    assert any(
        label == "tolist" and where.startswith("rem/models/tokenizer.py")
        for label, where in rec.hits
    ), rec.hits
    rec = SyncRecorder()
    with rec:
        _, metrics = tok.compute_loss(batch, metrics_as_tensors=True)
    assert rec.report()["total_in_rem"] == 0
    assert all(isinstance(v, torch.Tensor) and v.dim() == 0 for v in metrics.values())


def test_optimizer_step_and_phase_summary():
    torch.manual_seed(0)
    tok = _tiny_tokenizer()
    opt = torch.optim.AdamW(tok.parameters(), lr=1e-3)
    params = list(tok.parameters())
    rows, norms = [], []
    for _ in range(3):
        batch = {"observations": torch.rand(4, 1, 3, 64, 64)}
        metrics, norm = optimizer_step(
            lambda batch=batch: tok.compute_loss(batch, metrics_as_tensors=True), opt, params, 1e-3
        )
        rows.append(metrics)
        norms.append(norm)
    assert all(n.item() > 1e-3 for n in norms)  # the norm before clipping, not after
    out = summarise_phase(rows, "tokenizer/train", norms)
    losses = [r["loss"].item() for r in rows]
    assert out["tokenizer/train/loss"] == pytest.approx(sum(losses) / 3, rel=1e-6)
    assert out["tokenizer/train/grad_norm_max"] == pytest.approx(max(n.item() for n in norms))
    assert out["tokenizer/train/grad_norm_min"] == pytest.approx(min(n.item() for n in norms))
    assert list(out)[:3] == [
        "tokenizer/train/commitment_loss",
        "tokenizer/train/reconstruction_loss",
        "tokenizer/train/loss",
    ]
    assert summarise_phase([], "x") == {}


def test_masked_frames_get_no_weight_and_no_gradient():
    torch.manual_seed(0)
    tok = _tiny_tokenizer()
    x = torch.rand(2, 3, 3, 64, 64, requires_grad=True)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    loss, metrics = tok.compute_loss({"observations": x, "mask_padding": mask})
    loss.backward()
    per_frame = x.grad.abs().flatten(2).sum(-1)
    assert (per_frame[~mask] == 0).all() and (per_frame[mask] > 0).all()
    real = x.detach()[mask].unsqueeze(1)
    _, only_real = tok.compute_loss({"observations": real})
    assert metrics["loss"] == pytest.approx(only_real["loss"], rel=1e-5)
