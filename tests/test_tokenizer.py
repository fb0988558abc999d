"""VQ tokenizer (docs/protocol.md#tokenizer): sizes, shapes, quantisation, straight-through, losses."""

from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from rem.config import TokenizerConfig
from rem.models.lpips import LPIPS
from rem.models.tokenizer import Downsample, Tokenizer, Upsample
from rem.models.vgg import VGG16Features


def tiny_cfg(**kw) -> TokenizerConfig:
    base = dict(vocab_size=16, embed_dim=8, base_channels=8, z_channels=16, perceptual_loss=False)
    base.update(kw)
    return TokenizerConfig(**base)


def count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize(
    ("steps", "total", "encoder", "decoder"),
    [(3, 3_189_667, 1_754_048, 1_172_963), (4, 7_339_043, 5_884_864, 1_191_523)],
)
def test_paper_parameter_counts(steps, total, encoder, decoder):
    tok = Tokenizer(TokenizerConfig(num_downsample_steps=steps, perceptual_loss=False))
    assert count(tok) == total
    assert count(tok.encoder) == encoder
    assert count(tok.decoder) == decoder
    quant = count(tok.pre_quant_conv) + count(tok.post_quant_conv) + count(tok.embedding)
    assert quant == 262_656


def test_group_norms_and_activations_follow_spec():
    tok = Tokenizer(TokenizerConfig(perceptual_loss=False))
    norms = [m for m in tok.modules() if isinstance(m, nn.GroupNorm)]
    assert len(norms) == 8  # 3 + 1 in the encoder, 3 + 1 in the decoder
    assert all(n.num_groups == 8 and n.eps == 1e-6 and n.affine for n in norms)
    assert any(isinstance(m, nn.SiLU) for m in tok.modules())


@pytest.mark.parametrize(("steps", "k"), [(3, 64), (4, 16)])
def test_shapes(steps, k):
    tok = Tokenizer(tiny_cfg(num_downsample_steps=steps))
    x = torch.rand(3, 3, 64, 64)
    enc = tok.encode(x)
    side = int(k**0.5)
    assert tok.tokens_per_frame == k == TokenizerConfig(num_downsample_steps=steps).tokens_per_frame
    assert enc.tokens.shape == (3, k) and enc.tokens.dtype == torch.long
    assert enc.z.shape == enc.z_quantized.shape == (3, 8, side, side)
    assert tok.codes_from_tokens(enc.tokens).shape == (3, 8, side, side)
    assert tok.embed_tokens(enc.tokens).shape == (3, k, 8)
    out = tok.decode(enc.z_quantized)
    assert out.shape == (3, 3, 64, 64)
    assert out.min() >= 0 and out.max() <= 1


def test_codebook_init_is_uniform_in_one_over_v():
    tok = Tokenizer(TokenizerConfig(perceptual_loss=False))
    w = tok.embedding.weight
    assert w.shape == (512, 256)
    assert w.abs().max() <= 1 / 512
    assert w.abs().max() > 0.9 / 512  # really spread over the interval, not tiny


def test_tokens_are_nearest_codes_row_major():
    torch.manual_seed(0)
    tok = Tokenizer(tiny_cfg())
    tok.embedding.weight.data.normal_()  # spread codes so ties are impossible
    enc = tok.encode(torch.rand(2, 3, 64, 64))
    flat = enc.z.permute(0, 2, 3, 1).reshape(2, 64, 8)  # (b, h*w, e) row-major
    dist = torch.cdist(flat, tok.embedding.weight[None].expand(2, -1, -1))
    assert torch.equal(enc.tokens, dist.argmin(-1))
    # forward value of z_quantized is exactly the codebook vector
    torch.testing.assert_close(enc.z_quantized, tok.codes_from_tokens(enc.tokens))


def test_straight_through_gradient_reaches_the_encoder():
    torch.manual_seed(0)
    tok = Tokenizer(tiny_cfg())
    enc = tok.encode(torch.rand(2, 3, 64, 64))
    enc.z_quantized.sum().backward()
    assert tok.encoder.conv_in.weight.grad is not None
    assert tok.encoder.conv_in.weight.grad.abs().sum() > 0
    # identity gradient: d(sum z_q)/dz = 1 everywhere; codebook gets none through z_q
    assert tok.embedding.weight.grad is None


def test_downsample_pads_right_and_bottom_only():
    down = Downsample(1, 1)
    down.conv.weight.data.fill_(1.0)
    down.conv.bias.data.zero_()
    x = torch.zeros(1, 1, 8, 8)
    x[..., 2, 2] = 1.0
    y = down(x)
    assert y.shape == (1, 1, 4, 4)
    # window of output (0, 0) covers input rows/cols 0..2 (no top/left pad)
    assert y[0, 0, 0, 0] == 1 and y[0, 0, 1, 1] == 1 and y.sum() == 4
    x = torch.zeros(1, 1, 8, 8)
    x[..., 7, 7] = 1.0  # only the last window, which hangs over the right/bottom pad
    assert down(x)[0, 0, 3, 3] == 1


def test_upsample_is_nearest():
    x = torch.arange(4.0).view(1, 1, 2, 2)
    y = Upsample()(x)
    assert torch.equal(
        y[0, 0], torch.tensor([[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3.0]])
    )


def test_loss_terms_and_gradients():
    torch.manual_seed(0)
    tok = Tokenizer(tiny_cfg())
    x = torch.rand(4, 1, 3, 64, 64)
    loss, metrics = tok.compute_loss({"observations": x})
    assert set(metrics) == {"commitment_loss", "reconstruction_loss", "loss"}
    assert all(torch.isfinite(torch.tensor(v)) for v in metrics.values())
    assert loss.item() == pytest.approx(metrics["commitment_loss"] + metrics["reconstruction_loss"])
    loss.backward()
    for name in ("encoder.conv_in.weight", "decoder.out.2.weight", "embedding.weight"):
        grad = dict(tok.named_parameters())[name].grad
        assert grad is not None and grad.abs().sum() > 0, name


def test_reconstruction_loss_is_mse_in_minus_one_one_space():
    torch.manual_seed(0)
    tok = Tokenizer(tiny_cfg())
    x = torch.rand(2, 3, 64, 64)
    _, metrics = tok.compute_loss({"observations": x})
    with torch.no_grad():
        raw = tok.decode_raw(tok.encode(x).z_quantized)
    assert metrics["reconstruction_loss"] == pytest.approx(
        F.mse_loss(raw, 2 * x - 1).item(), rel=1e-5
    )


def test_mask_padding_drops_padded_frames():
    torch.manual_seed(0)
    tok = Tokenizer(tiny_cfg())
    x = torch.rand(2, 3, 3, 64, 64)
    mask = torch.tensor([[True, True, False], [True, False, False]])
    _, a = tok.compute_loss({"observations": x, "mask_padding": mask})
    x2 = x.clone()
    x2[~mask] = 1.0  # changing padded frames must not change the loss
    _, b = tok.compute_loss({"observations": x2, "mask_padding": mask})
    assert a["loss"] == pytest.approx(b["loss"], rel=1e-6)
    _, c = tok.compute_loss({"observations": x2})
    assert c["loss"] != pytest.approx(a["loss"], rel=1e-6)


def test_perceptual_term_with_a_tiny_stand_in():
    torch.manual_seed(0)
    lpips = LPIPS(VGG16Features(widths=(4, 4, 8, 8, 8)))
    for lin in lpips.lins:
        lin.model[1].weight.data.uniform_(0.1, 1.0)
    tok = Tokenizer(tiny_cfg(perceptual_loss=True), lpips)
    loss, metrics = tok.compute_loss({"observations": torch.rand(2, 1, 3, 64, 64)})
    assert metrics["perceptual_loss"] > 0
    assert loss.item() == pytest.approx(
        metrics["commitment_loss"] + metrics["reconstruction_loss"] + metrics["perceptual_loss"],
        rel=1e-5,
    )
    loss.backward()
    assert all(p.grad is None for p in lpips.parameters())  # frozen
    assert tok.decoder.out[2].weight.grad is not None
    # LPIPS tensors are saved with the tokenizer (checkpoints hold them)
    assert "perceptual.lin0.model.1.weight" in tok.state_dict()


def test_perceptual_on_without_network_is_an_error():
    with pytest.raises(ValueError, match="perceptual_loss"):
        Tokenizer(dataclasses.replace(tiny_cfg(), perceptual_loss=True), None)


def test_bad_frame_shape_is_an_error():
    tok = Tokenizer(tiny_cfg())
    with pytest.raises(ValueError, match=r"\(b, 3, 64, 64\)"):
        tok.encode(torch.rand(2, 3, 32, 32))
