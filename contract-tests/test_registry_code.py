"""Registry vs code: every registry topic is produced and consumed where the registry says.

The code is read with `ast`, not imported. A reference is a module-level Topic constant of
mlmesh_common.topics, written `topics.X` (any `<module>.X`) or as a bare `X` imported from
the topics module, optionally followed by `.name`:
- producer: the first argument (or `topic=`) of a call to `emit(...)` or `produce(...)`, or
  of a Kafka `send(...)` / `send_and_wait(...)` (leading underscores ignored, so a
  module's own `_send(topics.X, ...)` helper counts);
- consumer: the first argument of `handles(...)` (`@service.handles(topics.X)`),
  `subscribe(...)` or `topic(...)` (faust's `app.topic(topics.X.name)`), or an element of a
  tuple/list assigned to a name ending in `_TOPICS` (e.g. the gateway's projection).
Scanned: services/*/src, libs/common/src/mlmesh_common and (for external producers) all of
libs/. Shared code in libs/common counts for every service (the runtime emits
stage.progress and experiment.failed on behalf of all of them).
"""

from __future__ import annotations

import ast
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

from mlmesh_common import topics

ROOT = Path(__file__).resolve().parents[1]
COMMON = ROOT / "libs" / "common" / "src" / "mlmesh_common"
RUNTIME = COMMON / "runtime"
SERVICES = ROOT / "services"
LIBS = ROOT / "libs"
EXTERNAL_PRODUCERS = {"serving", "other-systems"}
PRODUCER_CALLS = {"emit", "produce", "send", "send_and_wait"}
CONSUMER_CALLS = {"handles", "subscribe", "topic"}
CONSTANTS = {name: value for name, value in vars(topics).items()
             if name.isupper() and isinstance(value, topics.Topic)}


@dataclass(frozen=True)
class Ref:
    const: str
    kind: str  # "produce" | "consume" | "mention"
    path: Path
    line: int

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def _topic_const(node: ast.AST | None, imported: dict[str, str]) -> str | None:
    """The registry constant a node names (topics.X, X, topics.X.name), else None."""
    if isinstance(node, ast.Attribute) and node.attr == "name":
        inner = _topic_const(node.value, imported)
        if inner:
            return inner
    if isinstance(node, ast.Attribute) and node.attr in CONSTANTS:
        return node.attr
    if isinstance(node, ast.Name) and node.id in imported:
        return imported[node.id]
    return None


def _call_name(func: ast.AST) -> str | None:
    if isinstance(func, ast.Attribute):
        return func.attr.lstrip("_")
    if isinstance(func, ast.Name):
        return func.id.lstrip("_")
    return None


def _first_arg(call: ast.Call) -> ast.AST | None:
    if call.args:
        return call.args[0]
    return next((kw.value for kw in call.keywords if kw.arg == "topic"), None)


def scan_file(path: Path) -> list[Ref]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    imported: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and (
                node.module == "mlmesh_common.topics"
                or (node.level and node.module.split(".")[-1] == "topics")):
            for alias in node.names:
                if alias.name in CONSTANTS:
                    imported[alias.asname or alias.name] = alias.name
    if path.resolve() == (COMMON / "topics.py").resolve():
        imported.update({name: name for name in CONSTANTS})
    refs: list[Ref] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = _call_name(node.func)
            const = _topic_const(_first_arg(node), imported)
            if const and name in PRODUCER_CALLS:
                refs.append(Ref(const, "produce", path, node.lineno))
            elif const and name in CONSUMER_CALLS:
                refs.append(Ref(const, "consume", path, node.lineno))
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names = [t.id for t in targets if isinstance(t, ast.Name)]
            names += [t.attr for t in targets if isinstance(t, ast.Attribute)]
            if any(n.endswith("_TOPICS") for n in names) and isinstance(
                    node.value, ast.Tuple | ast.List | ast.Set):
                for elt in node.value.elts:
                    if const := _topic_const(elt, imported):
                        refs.append(Ref(const, "consume", path, elt.lineno))
        if isinstance(node, ast.Attribute | ast.Name):
            if const := _topic_const(node, imported):
                refs.append(Ref(const, "mention", path, node.lineno))
    return refs


def _py_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts
                  and not any(part.startswith(".") for part in p.relative_to(ROOT).parts))


def _owner(path: Path) -> str:
    """services/<name>/src/... -> <name>; libs/common -> "common"; other libs -> "libs"."""
    rel = path.relative_to(ROOT).parts
    if rel[0] == "services":
        return rel[1]
    if rel[:2] == ("libs", "common"):
        return "common"
    return "libs"


def _collect() -> dict[str, dict[str, list[Ref]]]:
    """owner -> kind -> refs (produce / consume / mention)."""
    by_owner: dict[str, dict[str, list[Ref]]] = defaultdict(lambda: defaultdict(list))
    files = [p for d in sorted(SERVICES.glob("*/src")) for p in _py_files(d)]
    files += _py_files(LIBS)
    for path in files:
        if path.is_relative_to(LIBS / "common" / "src" / "mlmesh"):  # generated protobuf code
            continue
        for ref in scan_file(path):
            by_owner[_owner(path)][ref.kind].append(ref)
    return by_owner


def _has(by_owner, owners: list[str], kind: str, const: str) -> bool:
    return any(r.const == const for o in owners for r in by_owner.get(o, {}).get(kind, []))


def missing_producers_and_consumers() -> list[str]:
    by_owner = _collect()
    everyone = list(by_owner)
    problems: list[str] = []
    for const, topic in CONSTANTS.items():
        for producer in topic.producers:
            if producer in EXTERNAL_PRODUCERS:
                ok = _has(by_owner, everyone, "produce", const)
                hint = "anywhere under libs/ or services/ (e.g. prediction_log.py, the CLI)"
            else:
                ok = _has(by_owner, [producer, "common"], "produce", const)
                hint = f"in services/{producer}/src (or libs/common)"
            if not ok:
                problems.append(f"{topic.name}: no producer for {producer!r}: expected "
                                f"emit/produce/send(topics.{const}, ...) {hint}")
        if topic.broadcast:
            runtime_refs = [r for o in by_owner.values() for r in o.get("mention", [])
                            if r.const == const and r.path.is_relative_to(RUNTIME)]
            if not runtime_refs:
                problems.append(f"{topic.name}: broadcast, but the runtime "
                                f"(libs/common/src/mlmesh_common/runtime) never references "
                                f"{const} (its cancel listener)")
        for group_name in topic.consumer_groups:
            service = topics.group(group_name).service
            if not _has(by_owner, [service, "common"], "consume", const):
                problems.append(
                    f"{topic.name}: no consumer for group {group_name!r}: expected "
                    f"@service.handles(topics.{const}, group={group_name!r}), subscribe/topic("
                    f"topics.{const}...) or topics.{const} in a *_TOPICS list in "
                    f"services/{service}/src")
    return problems


def test_every_topic_has_its_producers_and_consumers_in_code() -> None:
    problems = missing_producers_and_consumers()
    assert not problems, ("the topic registry (mlmesh_common.topics) and the code disagree:\n  "
                          + "\n  ".join(problems))


def test_services_produce_only_registered_topics() -> None:
    """A service emitting a topic it is not a registered producer of means the registry is stale."""
    by_owner = _collect()
    problems = []
    for owner, kinds in sorted(by_owner.items()):
        if owner in ("common", "libs"):
            continue
        for ref in kinds.get("produce", []):
            topic = CONSTANTS[ref.const]
            if owner not in topic.producers:
                problems.append(f"{ref.where}: {owner} produces {topic.name}, but the registry "
                                f"lists only {list(topic.producers)} as its producers")
    assert not problems, "\n  ".join(["registry producers are stale:", *problems])


def test_scanner_recognises_the_documented_forms(tmp_path: Path) -> None:
    """The scanner itself: each documented spelling counts, other calls do not."""
    src = tmp_path / "svc.py"
    src.write_text(
        "from mlmesh_common import topics\n"
        "from mlmesh_common.topics import STAGE_PROGRESS as SP, DRIFT_DETECTED\n"
        "@service.handles(topics.DATASET_ACQUIRED, group='profile')\n"
        "async def h(ctx, e):\n"
        "    ctx.emit(topics.DATASET_PROFILED, e)\n"
        "    await svc.produce(SP, e, key='k')\n"
        "    await _send(topics.EXPERIMENT_REQUESTED, e)\n"
        "    await producer.send_and_wait(topics.GROUND_TRUTH_LOGGED.name, b'')\n"
        "    await _dead_letter(topics.TUNE_TRIAL, b'')\n"
        "    app.topic(topics.PREDICTION_LOGGED.name)\n"
        "    consumer.subscribe(DRIFT_DETECTED)\n"
        "    log(topics.TRAIN_JOB)\n"
        "PROJECTED_TOPICS = (topics.MODEL_SELECTED, topics.DOCS_GENERATED.name)\n")
    refs = {(r.kind, r.const) for r in scan_file(src) if r.kind != "mention"}
    assert refs == {("consume", "DATASET_ACQUIRED"), ("produce", "DATASET_PROFILED"),
                    ("produce", "STAGE_PROGRESS"), ("produce", "EXPERIMENT_REQUESTED"),
                    ("produce", "GROUND_TRUTH_LOGGED"), ("consume", "PREDICTION_LOGGED"),
                    ("consume", "DRIFT_DETECTED"), ("consume", "MODEL_SELECTED"),
                    ("consume", "DOCS_GENERATED")}
