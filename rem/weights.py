"""Pretrained files the perceptual (LPIPS) loss needs, and how to get them offline.

Two files live in one cache folder (`cfg.tokenizer.weights_dir`; `$REM_WEIGHTS_DIR` wins):
- `vgg16-397923af.pth`: torchvision's ImageNet VGG16 (~528 MB). torchvision names the file
  after the first 8 hex digits of its sha256, which is what we verify.
- `lpips_vgg_v0.1.pth`: the LPIPS v0.1 VGG linear-layer weights (7,289 bytes), md5
  d507d7349b931f0638a25a48a722f98a as checked by taming-transformers / the REM reference.
  The same bytes ship inside the `lpips` 0.1.4 wheel on PyPI (`lpips/weights/v0.1/vgg.pth`,
  BSD-2 licence), so `pip download lpips==0.1.4 --no-deps` + `--lpips-wheel` also works.

`rem weights fetch` downloads them on an online machine (atomic: temp file + checksum +
rename); `rem weights check` reports what is present. Training with the perceptual loss calls
`require_perceptual_weights`, which fails before any training with the path searched and the
command that fixes it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import urllib.error
import urllib.request
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ENV_VAR = "REM_WEIGHTS_DIR"


@dataclass(frozen=True)
class WeightFile:
    key: str
    filename: str
    description: str
    urls: tuple[str, ...]
    sha256_prefix: str  # full sha256 when known, else the published prefix
    md5: str | None = None
    size: int | None = None


VGG16 = WeightFile(
    key="vgg16",
    filename="vgg16-397923af.pth",
    description="torchvision VGG16 ImageNet weights (LPIPS backbone)",
    urls=("https://download.pytorch.org/models/vgg16-397923af.pth",),
    sha256_prefix="397923af",
)
LPIPS_LIN = WeightFile(
    key="lpips_lin",
    filename="lpips_vgg_v0.1.pth",
    description="LPIPS v0.1 VGG linear-layer weights",
    urls=(
        "https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/v0.1/vgg.pth",
        "https://heibox.uni-heidelberg.de/f/607503859c864bc1b30b/?dl=1",  # taming-transformers
    ),
    sha256_prefix="a78928a0af1e5f0fcb1f3b9e8f8c3a2a5a3de244d830ad5c1feddc79b8432868",
    md5="d507d7349b931f0638a25a48a722f98a",
    size=7289,
)
WEIGHT_FILES = (VGG16, LPIPS_LIN)
LPIPS_WHEEL_MEMBER = "lpips/weights/v0.1/vgg.pth"


class WeightsError(RuntimeError):
    """A weight file is missing, corrupt or cannot be downloaded; the message says the fix."""


def weights_dir(configured: str | os.PathLike[str] | None = None) -> Path:
    """Cache folder: `$REM_WEIGHTS_DIR` if set, else `configured` (cfg.tokenizer.weights_dir)."""
    env = os.environ.get(ENV_VAR)
    if env:
        return Path(env).expanduser().resolve()
    if configured is None:
        from rem.config import TokenizerConfig

        configured = TokenizerConfig().weights_dir
    return Path(configured).expanduser().resolve()


def _digests(path: Path) -> tuple[str, str]:
    sha, md5 = hashlib.sha256(), hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            sha.update(chunk)
            md5.update(chunk)
    return sha.hexdigest(), md5.hexdigest()


def verify(path: Path, spec: WeightFile) -> str | None:
    """None if `path` has the expected checksums, else a reason."""
    if not path.is_file():
        return "missing"
    sha, md5 = _digests(path)
    if not sha.startswith(spec.sha256_prefix):
        return f"sha256 {sha[:16]}... does not start with {spec.sha256_prefix}"
    if spec.md5 is not None and md5 != spec.md5:
        return f"md5 {md5} != {spec.md5}"
    return None


def status(directory: Path) -> dict[str, str | None]:
    """{key: None if present and valid else reason} for every weight file."""
    return {spec.key: verify(directory / spec.filename, spec) for spec in WEIGHT_FILES}


def fix_command(directory: Path) -> str:
    return f"rem weights fetch --dir {directory}"


def require_perceptual_weights(directory: Path) -> tuple[Path, Path]:
    """Paths of (VGG16, LPIPS lin) weights; raises WeightsError naming the fix if missing.

    Only existence is checked here (hashing 528 MB on every start is slow); `rem weights
    check` verifies checksums and loading validates every key and shape.
    """
    paths = tuple(directory / spec.filename for spec in WEIGHT_FILES)
    missing = [p for p in paths if not p.is_file()]
    if missing:
        names = ", ".join(str(p) for p in missing)
        raise WeightsError(
            f"the tokenizer's perceptual (LPIPS) loss needs pretrained weights; missing: {names} "
            f"(searched {directory}; set by tokenizer.weights_dir, ${ENV_VAR} wins). Fix: run "
            f"`{fix_command(directory)}` on a machine with internet and copy the folder here "
            "(or set $REM_WEIGHTS_DIR to it), or train without it: tokenizer.perceptual_loss=false"
        )
    return paths[0], paths[1]


Opener = Callable[..., IO[bytes]]


def _atomic_copy_stream(src: IO[bytes], dest: Path, spec: WeightFile) -> None:
    """Stream into a temp file beside `dest`, verify checksums, then rename over `dest`."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".tmp")
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            shutil.copyfileobj(src, f, 1 << 20)
            f.flush()
            os.fsync(f.fileno())
        problem = verify(tmp, spec)
        if problem is not None:
            raise WeightsError(f"downloaded {spec.filename} failed verification: {problem}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def _download(spec: WeightFile, dest: Path, opener: Opener, timeout: float) -> None:
    errors = []
    for url in spec.urls:
        try:
            with opener(url, timeout=timeout) as response:
                _atomic_copy_stream(response, dest, spec)
            return
        except (urllib.error.URLError, OSError, WeightsError) as err:
            errors.append(f"{url}: {getattr(err, 'reason', err)}")
    raise WeightsError(
        f"could not download {spec.filename} ({spec.description}):\n  "
        + "\n  ".join(errors)
        + f"\nIf this machine is offline, run `{fix_command(dest.parent)}` on a machine with "
        f"internet and copy {dest.parent} here (or point ${ENV_VAR} at a copy), or place the "
        f"file at {dest} yourself"
        + (
            "; for the LPIPS lin weights `pip download lpips==0.1.4 --no-deps` and "
            "`rem weights fetch --lpips-wheel lpips-0.1.4-py3-none-any.whl` also work"
            if spec is LPIPS_LIN
            else ""
        )
    )


def extract_from_lpips_wheel(wheel: Path, directory: Path) -> Path:
    """Copy `lpips/weights/v0.1/vgg.pth` out of an lpips wheel (md5-verified) into the cache."""
    dest = directory / LPIPS_LIN.filename
    try:
        with zipfile.ZipFile(wheel) as zf, zf.open(LPIPS_WHEEL_MEMBER) as member:
            _atomic_copy_stream(member, dest, LPIPS_LIN)
    except (zipfile.BadZipFile, KeyError, FileNotFoundError) as err:
        raise WeightsError(
            f"{wheel} is not an lpips wheel with {LPIPS_WHEEL_MEMBER}: {err}"
        ) from err
    return dest


def _torch_hub_copy() -> Path:
    torch_home = os.environ.get("TORCH_HOME", "~/.cache/torch")
    return Path(torch_home).expanduser() / "hub" / "checkpoints" / VGG16.filename


def fetch(
    directory: Path,
    *,
    opener: Opener | None = None,
    timeout: float = 60.0,
    lpips_wheel: Path | None = None,
    log: Callable[[str], None] = print,
) -> None:
    """Make every weight file present and valid in `directory`; raises WeightsError.

    `opener(url, timeout=...)` returns a readable response (default urllib's urlopen)."""
    opener = opener or urllib.request.urlopen
    failures = []
    for spec in WEIGHT_FILES:
        dest = directory / spec.filename
        if verify(dest, spec) is None:
            log(f"ok       {dest}")
            continue
        try:
            if spec is LPIPS_LIN and lpips_wheel is not None:
                extract_from_lpips_wheel(lpips_wheel, directory)
                log(f"fetched  {dest} (from {lpips_wheel})")
                continue
            hub = _torch_hub_copy()
            if spec is VGG16 and verify(hub, spec) is None:
                with open(hub, "rb") as src:  # torchvision already downloaded it here
                    _atomic_copy_stream(src, dest, spec)
                log(f"fetched  {dest} (copied from {hub})")
                continue
            log(f"download {spec.urls[0]}")
            _download(spec, dest, opener, timeout)
            log(f"fetched  {dest}")
        except WeightsError as err:
            failures.append(str(err))
    if failures:
        raise WeightsError("\n".join(failures))
