"""The Atari 100k game list, the 8-game ablation subset and game-name checking.

Results files key scores by the bare game name (`Breakout`); the gymnasium env id is
`<Game>NoFrameskip-v4`.
"""

from __future__ import annotations

import difflib

# The 26 Atari 100k games, alphabetical (the keys of the score files).
ATARI_100K_GAMES: tuple[str, ...] = (
    "Alien",
    "Amidar",
    "Assault",
    "Asterix",
    "BankHeist",
    "BattleZone",
    "Boxing",
    "Breakout",
    "ChopperCommand",
    "CrazyClimber",
    "DemonAttack",
    "Freeway",
    "Frostbite",
    "Gopher",
    "Hero",
    "Jamesbond",
    "Kangaroo",
    "Krull",
    "KungFuMaster",
    "MsPacman",
    "Pong",
    "PrivateEye",
    "Qbert",
    "RoadRunner",
    "Seaquest",
    "UpNDown",
)

# The games of the paper's ablation study.
ABLATION_GAMES: tuple[str, ...] = (
    "Assault",
    "Asterix",
    "ChopperCommand",
    "CrazyClimber",
    "DemonAttack",
    "Gopher",
    "Krull",
    "RoadRunner",
)

# Games that ship with the package (rem/envs/catch.py) for checking that the agent learns in
# CPU-minutes; they are not Atari games: no human / random reference scores, no env id.
TOY_GAMES: tuple[str, ...] = ("Catch",)

# Named game sets a workflow config's variant entry may use instead of a list of games (the
# workflow, `rem status` / `rem plan` and the preliminary report expand them the same way).
GAME_SETS: dict[str, tuple[str, ...]] = {
    "atari100k": ATARI_100K_GAMES,
    "ablation8": ABLATION_GAMES,
    "toy": TOY_GAMES,
}

ENV_ID_SUFFIX = "NoFrameskip-v4"


class UnknownGameError(ValueError):
    """A game name outside the Atari 100k list; the message lists the valid names."""


def is_toy(game: str) -> bool:
    """True for the package's own toy games (`TOY_GAMES`), which have no Atari env id."""
    return game in TOY_GAMES


def check_game(name: str) -> str:
    """Return `name` if it is one of the 26 games or a toy game, else raise `UnknownGameError`.

    Names are exact (they key results files and run folders), so `pong` or
    `PongNoFrameskip-v4` are refused with a suggestion rather than silently rewritten.
    """
    if name in ATARI_100K_GAMES or name in TOY_GAMES:
        return name
    bare = name[: -len(ENV_ID_SUFFIX)] if name.endswith(ENV_ID_SUFFIX) else name
    by_lower = {g.lower(): g for g in ATARI_100K_GAMES + TOY_GAMES}
    suggestion = by_lower.get(bare.lower().replace("_", "").replace("-", ""))
    if suggestion is None:
        close = difflib.get_close_matches(bare, ATARI_100K_GAMES + TOY_GAMES, n=1, cutoff=0.6)
        suggestion = close[0] if close else None
    hint = f" Did you mean {suggestion!r}?" if suggestion else ""
    raise UnknownGameError(
        f"unknown game {name!r}.{hint} Valid names (the 26 Atari 100k games, exact spelling): "
        + ", ".join(ATARI_100K_GAMES)
        + "; toy games: "
        + ", ".join(TOY_GAMES)
    )


def env_id(game: str) -> str:
    """`Breakout` -> `BreakoutNoFrameskip-v4` (the gymnasium id registered by ale-py)."""
    if is_toy(game):
        raise UnknownGameError(f"{game!r} is a toy game of this package, not an Atari env id")
    return f"{check_game(game)}{ENV_ID_SUFFIX}"
