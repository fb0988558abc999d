"""Our VGG16 features and LPIPS (docs/protocol.md#tokenizer), with tiny random stand-ins."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from rem.models.lpips import LPIPS
from rem.models.vgg import VGG16Features

TINY = (2, 4, 4, 8, 8)
# torchvision vgg16().features: conv layers at these indices
CONV_INDICES = (0, 2, 5, 7, 10, 12, 14, 17, 19, 21, 24, 26, 28)


def tiny_lpips(**kw) -> LPIPS:
    torch.manual_seed(0)
    lpips = LPIPS(VGG16Features(TINY), **kw)
    for lin in lpips.lins:
        lin.model[1].weight.data.uniform_(0.1, 1.0)
    return lpips


def test_vgg16_keys_and_size_match_torchvision():
    vgg = VGG16Features()
    expected = [f"features.{i}.{p}" for i in CONV_INDICES for p in ("weight", "bias")]
    assert list(vgg.state_dict()) == expected
    assert sum(p.numel() for p in vgg.parameters()) == 14_714_688
    assert len(vgg.features) == 31


def test_lpips_lin_keys_and_size():
    lpips = LPIPS()
    lins = {k: v for k, v in lpips.state_dict().items() if k.startswith("lin")}
    assert list(lins) == [f"lin{i}.model.1.weight" for i in range(5)]
    assert sum(v.numel() for v in lins.values()) == 1_472
    assert all(not p.requires_grad for p in lpips.parameters())


def test_slices_end_at_the_relus():
    feats = VGG16Features(TINY)(torch.rand(1, 3, 32, 32))
    assert [f.shape[1:] for f in feats] == [
        (2, 32, 32),
        (4, 16, 16),
        (4, 8, 8),
        (8, 4, 4),
        (8, 2, 2),
    ]
    assert all(f.min() >= 0 for f in feats)  # ReLU outputs


def manual_lpips(lpips: LPIPS, x, y):
    shift = torch.tensor([-0.030, -0.088, -0.188]).view(1, 3, 1, 1)
    scale = torch.tensor([0.458, 0.448, 0.450]).view(1, 3, 1, 1)
    fx, fy = lpips.net((x - shift) / scale), lpips.net((y - shift) / scale)
    total = 0
    for i, (a, b) in enumerate(zip(fx, fy)):
        na = a / (a.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        nb = b / (b.pow(2).sum(1, keepdim=True).sqrt() + 1e-10)
        w = lpips.lins[i].model[1].weight
        total = total + F.conv2d((na - nb) ** 2, w).mean(dim=(1, 2, 3))
    return total


def test_distance_matches_the_formula():
    lpips = tiny_lpips().eval()
    x, y = torch.rand(3, 3, 32, 32) * 2 - 1, torch.rand(3, 3, 32, 32) * 2 - 1
    d = lpips(x, y)
    assert d.shape == (3,)
    torch.testing.assert_close(d, manual_lpips(lpips, x, y))
    torch.testing.assert_close(lpips(x, x), torch.zeros(3))
    torch.testing.assert_close(d, lpips(y, x))
    assert (d > 0).all()


def test_gradient_flows_to_inputs_not_parameters():
    lpips = tiny_lpips().eval()
    x = (torch.rand(2, 3, 64, 64) * 2 - 1).requires_grad_()
    lpips(x, torch.zeros(2, 3, 64, 64)).sum().backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in lpips.parameters())


def test_dropout_quirk_flag():
    x, y = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    faithful = tiny_lpips(dropout_in_train=True).train()
    assert not torch.allclose(faithful(x, y), faithful(x, y))  # dropout active in train mode
    faithful.eval()
    torch.testing.assert_close(faithful(x, y), faithful(x, y))
    fixed = tiny_lpips(dropout_in_train=False).train()
    torch.testing.assert_close(fixed(x, y), fixed(x, y))
    torch.testing.assert_close(fixed(x, y), faithful(x, y))


def write_fake_weights(tmp_path, widths=TINY):
    torch.manual_seed(1)
    source = VGG16Features(widths)
    state = dict(source.state_dict())
    state["classifier.0.weight"] = torch.zeros(3, 3)  # torchvision files also hold these
    vgg_path = tmp_path / "vgg.pth"
    torch.save(state, vgg_path)
    lin = {f"lin{i}.model.1.weight": torch.rand(1, w, 1, 1) for i, w in enumerate(widths)}
    lin_path = tmp_path / "lin.pth"
    torch.save(lin, lin_path)
    return source, lin, vgg_path, lin_path


def test_loads_torchvision_and_lpips_formats(tmp_path):
    source, lin, vgg_path, lin_path = write_fake_weights(tmp_path)
    lpips = LPIPS(VGG16Features(TINY))
    lpips.load_weights(vgg_path, lin_path)
    for key, value in source.state_dict().items():
        torch.testing.assert_close(lpips.net.state_dict()[key], value)
    for key, value in lin.items():
        torch.testing.assert_close(lpips.state_dict()[key], value)
    assert all(not p.requires_grad for p in lpips.parameters())


def test_wrong_files_fail_with_the_fix(tmp_path):
    _, _, vgg_path, lin_path = write_fake_weights(tmp_path)
    with pytest.raises(ValueError, match="rem weights fetch"):
        LPIPS(VGG16Features((2, 4, 4, 8, 16))).load_weights(vgg_path, lin_path)  # shape
    torch.save({"features.0.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="not a torchvision VGG16"):
        LPIPS(VGG16Features(TINY)).load_weights(tmp_path / "bad.pth", lin_path)
    with pytest.raises(ValueError, match="LPIPS v0.1"):
        LPIPS(VGG16Features(TINY)).load_weights(vgg_path, vgg_path)


def test_bf16_autocast_gives_finite_fp32_distances():
    lpips = tiny_lpips().train()
    x, y = torch.rand(2, 3, 32, 32) * 2 - 1, torch.rand(2, 3, 32, 32) * 2 - 1
    with torch.autocast("cpu", dtype=torch.bfloat16):
        d = lpips(x, y)
    assert d.dtype == torch.float32 and torch.isfinite(d).all() and (d > 0).all()
