"""Keyboard -> Atari action, built from the game's action meanings.

Keys are named as `pygame.key.name` names them ("w", "space", "up"), so this module needs no
pygame. Each key contributes action components; the held keys' components are combined into
an ALE meaning (W + D = "UPRIGHT") and the nearest meaning the game has is chosen, so every
result is a valid action of the game's minimal action set:

    space = FIRE          w/a/s/d = UP/LEFT/DOWN/RIGHT       arrows = direction + FIRE
    t/r/g/f = UPRIGHT/UPLEFT/DOWNRIGHT/DOWNLEFT     u/y/j/h = the same diagonals + FIRE

"Nearest" drops components until the meaning exists, FIRE first (the right arrow in Breakout,
which has no RIGHTFIRE, moves right). Opposite directions held together cancel.
"""

from __future__ import annotations

from itertools import combinations

# Keys and the action components they stand for (the reference's Atari keymap).
KEY_COMPONENTS: dict[str, frozenset[str]] = {
    "space": frozenset({"FIRE"}),
    "w": frozenset({"UP"}),
    "a": frozenset({"LEFT"}),
    "s": frozenset({"DOWN"}),
    "d": frozenset({"RIGHT"}),
    "up": frozenset({"UP", "FIRE"}),
    "left": frozenset({"LEFT", "FIRE"}),
    "down": frozenset({"DOWN", "FIRE"}),
    "right": frozenset({"RIGHT", "FIRE"}),
    "t": frozenset({"UP", "RIGHT"}),
    "r": frozenset({"UP", "LEFT"}),
    "g": frozenset({"DOWN", "RIGHT"}),
    "f": frozenset({"DOWN", "LEFT"}),
    "u": frozenset({"UP", "RIGHT", "FIRE"}),
    "y": frozenset({"UP", "LEFT", "FIRE"}),
    "j": frozenset({"DOWN", "RIGHT", "FIRE"}),
    "h": frozenset({"DOWN", "LEFT", "FIRE"}),
}

HELP = "space fire | w a s d move | arrows move+fire | t r g f diagonals | u y j h diagonals+fire"


def meaning_name(components: frozenset[str] | set[str]) -> str:
    """ALE spelling of a component set: vertical, horizontal, FIRE ({} -> "NOOP")."""
    name = "".join(c for c in ("UP", "DOWN", "RIGHT", "LEFT", "FIRE") if c in components)
    return name or "NOOP"


class KeyMap:
    """Maps the set of held keys to an action index of one game."""

    def __init__(self, action_meanings: list[str]):
        if not action_meanings or action_meanings[0] != "NOOP":
            raise ValueError(
                f"action meanings must start with NOOP (ALE minimal action set), got {action_meanings}"
            )
        self.meanings = list(action_meanings)
        self._index = {m: i for i, m in enumerate(self.meanings)}

    @property
    def keys(self) -> list[str]:
        """The keys that do something in this game (some key combination reaches a non-NOOP)."""
        return [k for k in KEY_COMPONENTS if self.action({k}) != 0]

    def action(self, held_keys: set[str] | frozenset[str]) -> int:
        """Action index for the held keys (names as `pygame.key.name`); unknown keys are ignored."""
        components: set[str] = set()
        for key in held_keys:
            components |= KEY_COMPONENTS.get(key, frozenset())
        for a, b in (("UP", "DOWN"), ("LEFT", "RIGHT")):
            if {a, b} <= components:
                components -= {a, b}
        # Largest subsets first; among equal sizes, the ones without FIRE first.
        ordered = sorted(components, key=lambda c: c == "FIRE")
        for size in range(len(ordered), 0, -1):
            subsets = sorted(combinations(ordered, size), key=lambda s: "FIRE" in s)
            for subset in subsets:
                index = self._index.get(meaning_name(set(subset)))
                if index is not None:
                    return index
        return 0
