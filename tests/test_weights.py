"""`rem weights fetch|check` and the missing-weights error, all offline."""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import io
import time
import urllib.error
import zipfile

import pytest

from rem import weights
from rem.cli import UserError
from rem.cli import weights as weights_cli
from rem.config import load_config
from rem.models.agent import build_agent


def fake_specs(monkeypatch, vgg_bytes: bytes, lin_bytes: bytes):
    """Point the registry at small files whose checksums we know."""
    vgg = dataclasses.replace(
        weights.VGG16,
        sha256_prefix=hashlib.sha256(vgg_bytes).hexdigest()[:8],
        urls=("http://x/vgg",),
    )
    lin = dataclasses.replace(
        weights.LPIPS_LIN,
        sha256_prefix=hashlib.sha256(lin_bytes).hexdigest(),
        md5=hashlib.md5(lin_bytes).hexdigest(),
        urls=("http://x/lin1", "http://x/lin2"),
    )
    monkeypatch.setattr(weights, "VGG16", vgg)
    monkeypatch.setattr(weights, "LPIPS_LIN", lin)
    monkeypatch.setattr(weights, "WEIGHT_FILES", (vgg, lin))
    monkeypatch.setenv("TORCH_HOME", "/nonexistent-torch-home")
    return vgg, lin


def offline_opener(url, timeout):
    raise urllib.error.URLError("[Errno -3] Temporary failure in name resolution")


def test_published_checksums():
    assert weights.VGG16.filename.split("-")[1].startswith(weights.VGG16.sha256_prefix)
    assert weights.LPIPS_LIN.md5 == "d507d7349b931f0638a25a48a722f98a"


def test_env_var_wins(monkeypatch, tmp_path):
    monkeypatch.setenv("REM_WEIGHTS_DIR", str(tmp_path / "env"))
    assert weights.weights_dir("/somewhere/else") == (tmp_path / "env").resolve()
    monkeypatch.delenv("REM_WEIGHTS_DIR")
    assert weights.weights_dir(str(tmp_path / "cfg")) == (tmp_path / "cfg").resolve()


def test_fetch_offline_fails_clearly_and_leaves_nothing(monkeypatch, tmp_path):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    with pytest.raises(weights.WeightsError) as err:
        weights.fetch(tmp_path, opener=offline_opener, log=lambda _: None)
    text = str(err.value)
    assert "is offline" in text and "name resolution" in text
    assert f"rem weights fetch --dir {tmp_path}" in text
    assert "download.pytorch.org" in text and "PerceptualSimilarity" in text
    assert "--lpips-wheel" in text
    assert [p.name for p in tmp_path.iterdir()] == []  # no partial or temp files


def test_fetch_downloads_verifies_and_is_idempotent(monkeypatch, tmp_path):
    vgg, lin = fake_specs(monkeypatch, b"vgg-bytes", b"lin-bytes")
    served = {"http://x/vgg": b"vgg-bytes", "http://x/lin2": b"lin-bytes"}
    calls = []

    def opener(url, timeout):
        calls.append(url)
        if url not in served:
            raise urllib.error.HTTPError(url, 404, "Not Found", {}, None)
        return io.BytesIO(served[url])

    weights.fetch(tmp_path, opener=opener, log=lambda _: None)
    assert calls == ["http://x/vgg", "http://x/lin1", "http://x/lin2"]  # falls back to URL 2
    assert (tmp_path / vgg.filename).read_bytes() == b"vgg-bytes"
    assert weights.status(tmp_path) == {"vgg16": None, "lpips_lin": None}
    weights.fetch(tmp_path, opener=offline_opener, log=lambda _: None)  # nothing to do


def test_corrupt_download_is_rejected(monkeypatch, tmp_path):
    vgg, _ = fake_specs(monkeypatch, b"vgg-bytes", b"lin-bytes")
    with pytest.raises(weights.WeightsError, match="failed verification"):
        weights.fetch(tmp_path, opener=lambda url, timeout: io.BytesIO(b"tampered"), log=print)
    assert list(tmp_path.iterdir()) == []


def test_lpips_wheel_and_torch_hub_sources(monkeypatch, tmp_path):
    vgg, lin = fake_specs(monkeypatch, b"vgg-bytes", b"lin-bytes")
    wheel = tmp_path / "lpips-0.1.4-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        zf.writestr(weights.LPIPS_WHEEL_MEMBER, b"lin-bytes")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / vgg.filename).write_bytes(b"vgg-bytes")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cache = tmp_path / "cache"
    weights.fetch(cache, opener=offline_opener, lpips_wheel=wheel, log=lambda _: None)
    assert weights.status(cache) == {"vgg16": None, "lpips_lin": None}
    with pytest.raises(weights.WeightsError, match="not an lpips wheel"):
        weights.extract_from_lpips_wheel(hub / vgg.filename, cache)


def test_missing_weights_fail_before_building(monkeypatch, tmp_path):
    monkeypatch.setenv("REM_WEIGHTS_DIR", str(tmp_path))
    cfg = load_config("paper")
    assert cfg.tokenizer.perceptual_loss
    start = time.perf_counter()
    with pytest.raises(weights.WeightsError) as err:
        build_agent(cfg, num_actions=4)
    assert time.perf_counter() - start < 1.0  # nothing was built first
    text = str(err.value)
    assert str(tmp_path / "vgg16-397923af.pth") in text
    assert f"rem weights fetch --dir {tmp_path}" in text
    assert "tokenizer.perceptual_loss=false" in text


def run_cli(argv):
    parser = argparse.ArgumentParser()
    weights_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_check_and_offline_fetch(monkeypatch, tmp_path, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "no-torch-home"))
    assert run_cli(["weights", "check", "--dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "missing" in out and f"rem weights fetch --dir {tmp_path}" in out
    monkeypatch.setattr(weights.urllib.request, "urlopen", offline_opener)
    with pytest.raises(UserError, match="is offline"):
        run_cli(["weights", "fetch", "--dir", str(tmp_path)])
    vgg, lin = fake_specs(monkeypatch, b"v", b"l")
    (tmp_path / vgg.filename).write_bytes(b"v")
    (tmp_path / lin.filename).write_bytes(b"l")
    assert run_cli(["weights", "check", "--dir", str(tmp_path)]) == 0
    assert run_cli(["weights", "fetch", "--dir", str(tmp_path)]) == 0


def test_weights_is_a_registered_command():
    from rem.cli import COMMANDS

    assert "weights" in COMMANDS
