"""Evaluation-protocol records of every score source, and the mismatches between two sources.

Two numbers are only comparable when they were measured the same way: sticky actions or
not, the episode cap in frames or agent steps, how many test episodes, which policy
temperature, after how many agent steps. Each score source gets a `Protocol`: one
`Value(value, source)` per field of FIELDS, "unknown" where its paper and code do not say.

- Published files: `results/published/protocols.yaml` (hand-written, every value with the
  place it is stated); `load_protocols` checks it (every field present, every score file of
  the folder covered, the normalisation tables' SHA-256 unchanged).
- Our runs: `runs_protocol` reads each run's manifest.json (the resolved config) plus the
  facts fixed in code (ale-py's registration of the env id, the test env's wrappers).

`mismatches(a, b)` lists the fields on which two records differ, and the fields that cannot be
compared because one side is unknown; every table, figure and report that puts sources side
by side prints that list (`mismatch_lines`), and the CLI prints it once on the terminal.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from rem.runs.files import ManifestError, read_manifest

PROTOCOLS_FILE = "protocols.yaml"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Field:
    name: str
    label: str  # what a reader sees
    short: str  # figure footers


FIELDS = (
    Field("frame_skip", "frame skip", "frame skip"),
    Field("sticky_actions", "sticky-action probability", "sticky"),
    Field("test_noops", "no-ops at test reset", "no-ops"),
    Field("test_life_loss", "life loss ends a test episode", "life loss"),
    Field("episode_cap", "test episode cap", "cap"),
    Field("test_episodes", "test episodes per run", "episodes"),
    Field("test_temperature", "test policy temperature", "temperature"),
    Field("train_agent_steps", "agent steps of training", "agent steps"),
    Field("score_rule", "score rule", "score rule"),
)
FIELD_NAMES = tuple(f.name for f in FIELDS)
LABELS = {f.name: f.label for f in FIELDS}
SHORT = {f.name: f.short for f in FIELDS}
SCORE_RULES = {
    "final-eval-mean": "mean return over the test episodes of one evaluation after training",
}
_CAP = re.compile(r"^\s*(\d+)\s+(raw frames|agent steps)\s*$")
_NOOPS = re.compile(r"^\[\s*(\d+)\s*,\s*(\d+)\s*\]$")


class ProtocolError(ValueError):
    """protocols.yaml (or a run manifest) is malformed; the message names the file and key."""


@dataclass(frozen=True)
class Value:
    value: Any  # int, float, bool, str, or UNKNOWN
    source: str

    @property
    def known(self) -> bool:
        return self.value != UNKNOWN

    def text(self) -> str:
        if isinstance(self.value, bool):
            return "yes" if self.value else "no"
        if isinstance(self.value, int):
            return f"{self.value:,}"
        return str(self.value)


@dataclass(frozen=True)
class Protocol:
    """How one score source was measured: fields[name] = Value (every name of FIELDS)."""

    name: str
    fields: dict[str, Value]
    origin: str = ""  # where the record comes from (protocols.yaml, manifests)
    notes: tuple[str, ...] = ()

    def __getitem__(self, name: str) -> Value:
        return self.fields[name]

    @property
    def unknown(self) -> list[str]:
        return [n for n in FIELD_NAMES if not self.fields[n].known]


def unknown_protocol(name: str, why: str) -> Protocol:
    return Protocol(name, {n: Value(UNKNOWN, why) for n in FIELD_NAMES}, origin="none")


# ------------------------------------------------------------------ comparison


def _cap_frames(p: Protocol) -> tuple[int | None, str]:
    """Episode cap in raw frames (None if it cannot be converted) and its text."""
    v = p["episode_cap"]
    m = _CAP.match(str(v.value)) if v.known else None
    if m is None:
        return None, v.text()
    n, unit = int(m.group(1)), m.group(2)
    if unit == "raw frames":
        return n, v.text()
    skip = p["frame_skip"]
    return (n * skip.value if skip.known else None), v.text()


def _canonical(name: str, value: Any) -> Any:
    if name in ("sticky_actions", "test_temperature") and isinstance(value, (int, float)):
        return float(value)
    if name == "test_noops" and isinstance(value, str):
        m = _NOOPS.match(value.strip())
        if m:
            return (int(m.group(1)), int(m.group(2)))
        return value.strip().lower()
    return value


@dataclass(frozen=True)
class Mismatch:
    field: str
    a: str
    b: str
    kind: str  # "differs" or "unknown"
    note: str = ""


def mismatches(a: Protocol, b: Protocol) -> list[Mismatch]:
    """Fields on which `a` and `b` differ, and fields that one of them does not know.

    The episode cap is compared in raw frames (27,000 agent steps at frame skip 4 equals
    108,000 raw frames); units that cannot be converted count as a difference.
    """
    out = []
    for name in FIELD_NAMES:
        va, vb = a[name], b[name]
        if not (va.known and vb.known):
            out.append(Mismatch(name, va.text(), vb.text(), "unknown"))
            continue
        if name == "episode_cap":
            fa, ta = _cap_frames(a)
            fb, tb = _cap_frames(b)
            if fa is not None and fb is not None:
                if fa != fb:
                    out.append(Mismatch(name, ta, tb, "differs"))
                continue
            if ta != tb:
                out.append(Mismatch(name, ta, tb, "differs", "units cannot be converted"))
            continue
        if _canonical(name, va.value) != _canonical(name, vb.value):
            out.append(Mismatch(name, va.text(), vb.text(), "differs"))
    return out


def mismatch_summary(a: Protocol, b: Protocol) -> str:
    """One line: 'STORM vs REM: sticky-action probability 0.25 vs 0.0; ...; unknown: ...'."""
    ms = mismatches(b, a)
    diffs = [f"{LABELS[m.field]} {m.a} vs {m.b}" for m in ms if m.kind == "differs"]
    unknown = [LABELS[m.field] for m in ms if m.kind == "unknown"]
    parts = []
    if diffs:
        parts.append("; ".join(diffs))
    if unknown:
        parts.append("cannot compare (unknown): " + ", ".join(unknown))
    return f"{b.name} vs {a.name}: " + (" | ".join(parts) if parts else "same protocol")


def mismatch_lines(reference: Protocol, others: list[Protocol]) -> list[str]:
    """One line per other source that differs from (or cannot be compared with) reference."""
    return [mismatch_summary(reference, o) for o in others if mismatches(o, reference)]


def short_summary(reference: Protocol, others: list[Protocol]) -> list[str]:
    """Figure footers: 'STORM: sticky, no-ops, episodes (differ); 3 unknown'."""
    lines = []
    for o in others:
        ms = mismatches(o, reference)
        if not ms:
            continue
        diffs = [SHORT[m.field] for m in ms if m.kind == "differs"]
        unknown = sum(m.kind == "unknown" for m in ms)
        text = f"{o.name}: " + (", ".join(diffs) + " differ" if diffs else "")
        if unknown:
            text += ("; " if diffs else "") + f"{unknown} field(s) unknown"
        lines.append(text)
    return lines


def mismatch_rows(reference: Protocol, others: list[Protocol]) -> list[list[str]]:
    """CSV rows: source, reference, field, value, reference value, status."""
    rows = [["source", "reference", "field", "value", "reference_value", "status"]]
    for o in others:
        for m in mismatches(o, reference):
            rows.append([o.name, reference.name, m.field, m.a, m.b, m.kind])
    return rows


def markdown_section(
    reference: Protocol,
    others: list[Protocol],
    title: str = "",
    origin: str = "`results/published/protocols.yaml`",
) -> str:
    """The report block: a warning line per differing source, or a line saying all agree."""
    head = title or f"Protocol differences from {reference.name}"
    lines = mismatch_lines(reference, others)
    if not lines:
        names = ", ".join(o.name for o in others)
        return f"**{head}:** none; {names} and {reference.name} were measured the same way.\n"
    body = "\n".join(f"- {line}" for line in lines)
    return f"**{head}** (see `protocols.md`; values from {origin}):\n\n{body}\n"


def protocol_table(protocols: list[Protocol], reference: str | None = None) -> str:
    """Markdown: one row per field, one column per source; cells that differ from the
    reference column are marked with a dagger, unknowns are said so."""
    names = [p.name for p in protocols]
    ref = next((p for p in protocols if p.name == reference), None)
    lines = ["| field | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    for f in FIELDS:
        cells = []
        for p in protocols:
            v = p[f.name]
            text = v.text()
            differs = ref is not None and p is not ref and v.known
            if differs and any(
                m.field == f.name and m.kind == "differs" for m in mismatches(p, ref)
            ):
                text += " †"
            cells.append(text)
        lines.append(f"| {f.label} | " + " | ".join(cells) + " |")
    legend = f"† differs from {reference}. " if ref is not None else ""
    return (
        "\n".join(lines)
        + f"\n\n{legend}Score rule final-eval-mean: "
        + (SCORE_RULES["final-eval-mean"] + ".\n")
    )


def sources_markdown(protocols: list[Protocol]) -> str:
    """Every value with the place it is stated (the protocols.md appendix)."""
    out = []
    for p in protocols:
        out += [f"### {p.name}", "", f"Record: {p.origin}", ""]
        out += [f"- {LABELS[n]}: **{p[n].text()}** ({p[n].source})" for n in FIELD_NAMES]
        out += [f"- note: {n}" for n in p.notes]
        out.append("")
    return "\n".join(out)


@dataclass(frozen=True)
class ProtocolWarning:
    """The protocol mismatches of one comparison, for the terminal of the command that made
    it (the report's files carry them too)."""

    title: str
    lines: tuple[str, ...]


def warnings_text(warnings: list[ProtocolWarning | str]) -> str:
    """What a command prints on stderr: one-line warnings as they are, each mismatch block
    once (several tables share one comparison); '' when there is none."""
    out, seen = [], set()
    for w in warnings:
        if isinstance(w, str):
            out.append(w)
        elif w.lines and w not in seen:
            seen.add(w)
            out += [f"protocol mismatches: {w.title}", *(f"  {line}" for line in w.lines), ""]
    return "".join(line + "\n" for line in out)


# ------------------------------------------------------------------ published records


@dataclass
class Protocols:
    """protocols.yaml, checked: sources by label, file -> label, normalisation tables."""

    path: Path
    by_name: dict[str, Protocol] = field(default_factory=dict)
    by_file: dict[str, str] = field(default_factory=dict)
    normalisation: dict[str, dict[str, str]] = field(default_factory=dict)

    def for_file(self, file: str, label: str) -> Protocol:
        """The record of a published file (relative to the published folder); all unknown,
        with a note naming the fix, when protocols.yaml has none (a user-added baseline)."""
        name = self.by_file.get(file)
        if name is None:
            return unknown_protocol(
                label,
                f"no record for {file} in {self.path.name}; add one to state its protocol",
            )
        rec = self.by_name[name]
        return Protocol(label, rec.fields, rec.origin, rec.notes)

    def reference_note(self) -> str:
        return "; ".join(
            f"{name} sha256 {meta['sha256'][:12]} ({meta['source']})"
            for name, meta in self.normalisation.items()
        )


def _value(path: Path, where: str, raw: Any) -> Value:
    if not isinstance(raw, dict) or set(raw) != {"value", "source"}:
        raise ProtocolError(f"{path}: {where}: expected {{value: ..., source: ...}}, got {raw!r}")
    if not isinstance(raw["source"], str) or not raw["source"].strip():
        raise ProtocolError(f"{path}: {where}: `source` must say where the value is stated")
    value = raw["value"]
    name = where.rsplit(".", 1)[-1]
    if value != UNKNOWN:
        if name == "episode_cap" and not _CAP.match(str(value)):
            raise ProtocolError(
                f"{path}: {where}: {value!r} is not '<N> raw frames' or '<N> agent steps'"
            )
        if name == "score_rule" and value not in SCORE_RULES:
            raise ProtocolError(
                f"{path}: {where}: unknown score rule {value!r}; known: {', '.join(SCORE_RULES)}"
            )
        if name == "test_noops" and not (_NOOPS.match(str(value)) or value == "none"):
            raise ProtocolError(f"{path}: {where}: {value!r} is not '[lo, hi]' or 'none'")
    return Value(value, raw["source"].strip())


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def load_protocols(published_dir: str | Path, *, check_tables: bool = True) -> Protocols:
    """Read and check `<published_dir>/protocols.yaml`.

    Errors (ProtocolError): missing file, malformed record, a field missing, a score file
    recorded twice, a normalisation table whose SHA-256 differs from its recorded version.
    """
    published_dir = Path(published_dir)
    path = published_dir / PROTOCOLS_FILE
    if not path.is_file():
        raise ProtocolError(
            f"{path}: protocol records not found; every published score needs one "
            "(see results/published/protocols.yaml in the project)"
        )
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ProtocolError(f"{path}: not valid YAML ({err})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("sources"), dict):
        raise ProtocolError(
            f"{path}: expected top-level keys `version`, `normalisation`, `sources`"
        )
    out = Protocols(path)
    for name, rec in doc["sources"].items():
        if not isinstance(rec, dict) or not isinstance(rec.get("fields"), dict):
            raise ProtocolError(f"{path}: sources.{name}: needs `file` and `fields`")
        missing = [f for f in FIELD_NAMES if f not in rec["fields"]]
        extra = sorted(set(rec["fields"]) - set(FIELD_NAMES))
        if missing or extra:
            raise ProtocolError(
                f"{path}: sources.{name}.fields: missing {missing}, unknown {extra}; "
                f"every record has exactly {', '.join(FIELD_NAMES)}"
            )
        fields = {f: _value(path, f"sources.{name}.{f}", rec["fields"][f]) for f in FIELD_NAMES}
        file = str(rec.get("file", ""))
        if not file:
            raise ProtocolError(f"{path}: sources.{name}: `file` missing")
        if file in out.by_file:
            raise ProtocolError(f"{path}: {file} has two records ({out.by_file[file]}, {name})")
        origin = f"{path.name} ({rec.get('paper', 'paper not named')}; {rec.get('code', '')})"
        out.by_name[name] = Protocol(name, fields, origin)
        out.by_file[file] = name
    for table, meta in (doc.get("normalisation") or {}).items():
        if not isinstance(meta, dict) or not {"sha256", "source"} <= set(meta):
            raise ProtocolError(f"{path}: normalisation.{table}: needs `sha256` and `source`")
        out.normalisation[table] = {"sha256": str(meta["sha256"]), "source": str(meta["source"])}
        file = published_dir / table
        if check_tables and file.is_file() and sha256(file) != meta["sha256"]:
            raise ProtocolError(
                f"{file}: contents differ from the version recorded in {path.name} "
                f"(sha256 {meta['sha256'][:12]}...); every normalised score depends on it: "
                "restore the file, or record the new table's sha256 and source there"
            )
    return out


def score_files(published_dir: str | Path) -> list[str]:
    """Every per-run score file of the published folder (relative paths)."""
    root = Path(published_dir)
    skip = {"HUMAN.json", "RANDOM.json"}
    return sorted(str(p.relative_to(root)) for p in root.rglob("*.json") if p.name not in skip)


# ------------------------------------------------------------------ our runs


def _ale_sticky(game: str) -> tuple[Any, str]:
    """The sticky-action probability ale-py registers for the env id our runs use."""
    try:
        import ale_py
        import gymnasium as gym

        from rem.games import env_id

        gym.register_envs(ale_py)
        eid = env_id(game)
        p = gym.spec(eid).kwargs.get("repeat_action_probability")
        return float(
            p
        ), f"ale-py {ale_py.__version__} registers {eid} with repeat_action_probability {p}"
    except Exception as err:  # noqa: BLE001 - the record says unknown and why
        return UNKNOWN, f"could not read ale-py's registration of the env id ({err})"


def _config_value(cfg: dict, dotted: str) -> Any:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def run_fields(manifest: dict, game: str, episodes: int | None) -> dict[str, Value]:
    """One run's protocol from its manifest (`config` = the resolved config `rem train` used).

    Config keys: env.frame_skip, env.test_noop_max, env.test_max_raw_frames,
    collection.test_temperature, collection.steps_per_epoch, collection.stop_after_epochs,
    run.epochs, evaluation.final_episodes. `episodes` (the score file's episode count) wins
    over the config when given: a re-evaluation may use another count.
    """
    cfg = manifest.get("config") or {}
    src = "manifest.json config"

    def get(key: str, label: str) -> Value:
        v = _config_value(cfg, key)
        return Value(UNKNOWN, f"{src}: {key} missing") if v is None else Value(v, f"{src}.{key}")

    fields = {
        "frame_skip": get("env.frame_skip", "frame skip"),
        "test_life_loss": Value(False, "rem/envs/atari.py: LifeLossEnds wraps the train env only"),
        "score_rule": Value(
            "final-eval-mean", "rem train: final evaluation after the last epoch (scores.json)"
        ),
    }
    sticky, why = _ale_sticky(game)
    fields["sticky_actions"] = Value(sticky, why)
    noop = _config_value(cfg, "env.test_noop_max")
    fields["test_noops"] = (
        Value(
            f"[1, {noop}]",
            f"{src}.env.test_noop_max {noop} (rem/envs/atari.py NoopReset draws in [1, max])",
        )
        if isinstance(noop, int)
        else Value(UNKNOWN, f"{src}: env.test_noop_max missing")
    )
    cap = _config_value(cfg, "env.test_max_raw_frames")
    fields["episode_cap"] = (
        Value(f"{cap} raw frames", f"{src}.env.test_max_raw_frames")
        if isinstance(cap, int)
        else Value(UNKNOWN, f"{src}: env.test_max_raw_frames missing")
    )
    if episodes is not None:
        fields["test_episodes"] = Value(int(episodes), "the run's score file (episodes)")
    else:
        fields["test_episodes"] = get("evaluation.final_episodes", "test episodes")
    fields["test_temperature"] = get("collection.test_temperature", "temperature")
    steps = _config_value(cfg, "collection.steps_per_epoch")
    stop = _config_value(cfg, "collection.stop_after_epochs")
    epochs = _config_value(cfg, "run.epochs")
    if all(isinstance(x, int) for x in (steps, stop, epochs)):
        fields["train_agent_steps"] = Value(
            steps * min(stop, epochs),
            f"{src}: collection.steps_per_epoch {steps} x min(stop_after_epochs {stop}, "
            f"run.epochs {epochs})",
        )
    else:
        fields["train_agent_steps"] = Value(UNKNOWN, f"{src}: collection/run keys missing")
    return fields


def merge_runs(name: str, per_run: list[tuple[str, dict[str, Value]]], origin: str) -> Protocol:
    """One record for a set of runs; a field whose runs disagree says 'varies' and lists them."""
    if not per_run:
        return unknown_protocol(name, "no run manifest could be read")
    fields, notes = {}, []
    for f in FIELD_NAMES:
        values = {}
        for run, fs in per_run:
            values.setdefault(json.dumps(fs[f].value, sort_keys=True, default=str), []).append(run)
        if len(values) == 1:
            fields[f] = per_run[0][1][f]
            continue
        texts = [
            f"{json.loads(k)!s} ({len(v)} run{'s' if len(v) > 1 else ''})"
            for k, v in values.items()
        ]
        fields[f] = Value(f"varies: {', '.join(texts)}", per_run[0][1][f].source)
        notes.append(f"{LABELS[f]} differs between runs: {', '.join(texts)}")
    return Protocol(name, fields, origin, tuple(notes))


def run_manifest(run_dir: Path) -> dict | None:
    """A run's manifest, or None when it has none or an unreadable one."""
    try:
        return read_manifest(run_dir)
    except (OSError, ManifestError):
        return None
