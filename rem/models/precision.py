"""Working precision: float32 where bf16 autocast would lose too much, never narrower.

Models run in float32 (optionally under bf16 autocast on CUDA) or, converted with `.double()`,
in float64 (numerical tests, comparisons with other implementations). Code that must not run
in bf16 (retention arithmetic, vector quantisation, losses, the LSTM) widens its inputs with
`at_least_fp32` instead of `.float()`, which would narrow a float64 model back to float32.
"""

from __future__ import annotations

import torch


def wide_dtype(*dtypes: torch.dtype) -> torch.dtype:
    """The widest of `dtypes` and float32: bf16/fp16/fp32 -> fp32, fp64 -> fp64."""
    out = torch.float32
    for dtype in dtypes:
        out = torch.promote_types(out, dtype)
    return out


def at_least_fp32(x: torch.Tensor) -> torch.Tensor:
    """x as float32, or unchanged if already float32 / float64 (integers become float32)."""
    return x.to(wide_dtype(x.dtype))
