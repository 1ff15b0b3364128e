"""The `mlmesh` command line."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn
from rich.table import Table

from mlmesh_cli import runner
from mlmesh_cli.client import GatewayClient, GatewayError, resolve_api_key

app = typer.Typer(help="mlmesh: autonomous ML experiments on an event-driven mesh.",
                  no_args_is_help=True, add_completion=False)
topics_app = typer.Typer(help="Kafka topics of the registry.", no_args_is_help=True)
app.add_typer(topics_app, name="topics")
experiments_app = typer.Typer(help="Experiments: list, show, cancel.", no_args_is_help=True)
app.add_typer(experiments_app, name="experiments")
webhooks_app = typer.Typer(help="Webhook subscriptions and their delivery log.",
                           no_args_is_help=True)
app.add_typer(webhooks_app, name="webhooks")
dlq_app = typer.Typer(help="Dead letters: list, show, replay, purge.", no_args_is_help=True)
app.add_typer(dlq_app, name="dlq")
keys_app = typer.Typer(help="API keys: create, list, revoke (admin).", no_args_is_help=True)
app.add_typer(keys_app, name="keys")
console = Console()
STAGES = ("acquire", "profile", "prep", "train", "tune", "select", "docs", "git", "publish")

HomeOpt = Annotated[Path, typer.Option("--home", envvar="MLMESH_HOME",
                                       help="state folder of the embedded mesh")]
GatewayOpt = Annotated[str, typer.Option("--gateway", envvar="MLMESH_GATEWAY_URL",
                                         help="gateway URL (default: the running mesh's)")]


def _gateway_url(home: Path, gateway: str) -> str:
    if gateway:
        return gateway
    state = runner.read_state(home)
    if state is None:
        console.print("[red]No mesh is running here.[/] Start one with [bold]mlmesh up[/] or "
                      "pass --gateway URL.")
        raise typer.Exit(2)
    return state["gateway_url"]


@app.command()
def up(home: HomeOpt = Path(".mlmesh"),
       replicas: Annotated[str, typer.Option(help="e.g. tune=2,train-gpu=2")] = "",
       port: Annotated[int, typer.Option(help="gateway REST port")] = 8080,
       grpc_port: Annotated[int, typer.Option(help="gateway gRPC port")] = 50051,
       timeout: Annotated[float, typer.Option(help="seconds to wait until ready")] = 300,
       autoscale: Annotated[bool, typer.Option(
           help="scale services by consumer lag, 1 to min(--max-replicas, partitions)")] = False,
       max_replicas: Annotated[int, typer.Option(help="autoscaler's ceiling")] = 4) -> None:
    """Start the broker, MLflow, the gateway and every service, supervised, in the background."""
    if (state := runner.read_state(home)) is not None:
        console.print(f"A mesh is already running (gateway {state['gateway_url']}).")
        return
    try:
        config = runner.MeshConfig(home=home, gateway_port=port, grpc_port=grpc_port,
                                   replicas=runner.parse_replicas(replicas),
                                   autoscale=autoscale, max_replicas=max_replicas,
                                   kafka_bootstrap=os.environ.get("MLMESH_KAFKA_BOOTSTRAP", ""))
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc
    started = time.monotonic()
    runner.launch_detached(config)
    with console.status("Starting the mesh (broker, MLflow, gateway, services)..."):
        try:
            state = runner.wait_ready(home, timeout)
        except TimeoutError as exc:
            console.print(f"[red]{exc}[/]")
            runner.shutdown(home)
            raise typer.Exit(1) from exc
    console.print(f"[green]Mesh ready[/] in {time.monotonic() - started:.0f}s: gateway "
                  f"{state['gateway_url']} (gRPC {state['grpc_target']}), MLflow "
                  f"{state['mlflow_url']}, broker {state['kafka_bootstrap']}")


@app.command()
def down(home: HomeOpt = Path(".mlmesh")) -> None:
    """Stop the mesh started by `mlmesh up`."""
    if runner.shutdown(home):
        console.print("Mesh stopped.")
    else:
        console.print("No mesh is running here.")


@app.command()
def status(home: HomeOpt = Path(".mlmesh"),
           as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Health of every process of the running mesh."""
    state = runner.read_state(home)
    if state is None:
        console.print("No mesh is running here.")
        raise typer.Exit(1)
    health = runner.probe(state)
    if as_json:
        print(json.dumps({"state": state, "health": health}, indent=2))
        return
    table = Table("process", "pid", "health", "log", title=f"mesh at {state['home']}")
    for name, proc in state["processes"].items():
        color = {"ready": "green", "starting": "yellow"}.get(health[name], "red")
        table.add_row(name, str(proc.get("pid")), f"[{color}]{health[name]}[/]", proc["log"])
    console.print(table)
    console.print(f"gateway {state['gateway_url']}  gRPC {state['grpc_target']}  "
                  f"MLflow {state['mlflow_url']}  broker {state['kafka_bootstrap']}")


def _spec(dataset: str, target: str, budget: int, project: str, seed: int,
          max_trials: int) -> dict[str, Any]:
    if "://" not in dataset:
        path = Path(dataset).expanduser().resolve()
        if not path.exists():
            raise typer.BadParameter(f"{dataset} is neither a URL nor an existing file")
        dataset = path.as_uri()
    return {"dataset_uri": dataset, "target": target, "time_budget_s": budget,
            "project": project, "seed": seed, "max_trials": max_trials}


def follow(client: GatewayClient, experiment_id: str) -> dict[str, Any]:
    """Show a progress bar per stage until the experiment ends; returns its final state."""
    final: dict[str, Any] = {}
    with Progress(TextColumn("{task.description:<8}"), BarColumn(),
                  TextColumn("{task.percentage:>3.0f}%"), TextColumn("{task.fields[note]}"),
                  TimeElapsedColumn(), console=console) as progress:
        bars: dict[str, TaskID] = {s: progress.add_task(s, total=100, note="", start=False)
                                   for s in STAGES}
        for event_type, data in client.watch(experiment_id):
            if event_type == "end":
                final = data
                break
            stage = data.get("stage")
            if stage not in bars:
                continue
            bar = bars[stage]
            progress.start_task(bar)
            status_ = data.get("status", "")
            payload = data.get("payload", {})
            if status_ in ("finished", "skipped"):
                progress.update(bar, completed=100, note=status_)
            elif status_ == "failed":
                progress.update(bar, note="[red]failed[/]")
            else:
                progress.update(bar, completed=float(payload.get("percent", 0) or 0),
                                note=str(payload.get("message", ""))[:60])
    return final


def report(final: dict[str, Any], home: Path) -> None:
    """Print the leaderboard, the test score and where everything is."""
    result = final.get("result", {})
    if final.get("status") != "completed":
        console.print(f"[red]Experiment {final.get('experiment_id')} {final.get('status')}[/]: "
                      f"{final.get('failure_reason', '')}")
        return
    table = Table("rank", "family", "source", "CV mean", "CV std", "device",
                  title=f"Leaderboard ({result.get('metric')})")
    board = result.get("leaderboard", [])
    for rank, row in enumerate(board[:12], 1):
        table.add_row(str(rank), str(row.get("family")), str(row.get("source")),
                      f"{row.get('cv_mean') or 0:.4f}", f"{row.get('cv_std') or 0:.4f}",
                      str(row.get("device") or ""))
    console.print(table)
    if len(board) > 12:
        console.print(f"  ... and {len(board) - 12} more candidates (see the report)")
    console.print(f"Winner [bold]{result.get('winner')}[/]: test {result.get('metric')} = "
                  f"[bold green]{result.get('test_score', 0):.4f}[/] (dummy baseline "
                  f"{result.get('baseline_test_score', 0):.4f})")
    git = result.get("git", {})
    state = runner.read_state(home) or {}
    mlflow = state.get("mlflow_url", "")
    for label, value in (
        ("report", result.get("report_uri")),
        ("model card", result.get("model_card_uri")),
        ("MLflow run", f"{result.get('mlflow_run_id')}" + (f" (server {mlflow})" if mlflow
                                                              else "")),
        ("white paper", result.get("white_paper_uri")),
        ("reproduce", result.get("reproduction_uri")),
        ("registry", f"{result.get('registered_model')} v{result.get('model_version')} "
                     f"({result.get('registry_alias') or 'no alias'})"),
        ("ONNX", result.get("onnx_uri") or "not exported"),
        ("release", git.get("release_tag")),
        ("git commit", f"{git.get('commit', '')[:12]} on {git.get('branch')} "
                       f"({git.get('repository')})"),
        ("serving app", result.get("serving_app_uri")),
    ):
        console.print(f"  {label:<12} {value}")


@app.command()
def run(dataset: Annotated[str, typer.Argument(help="file path or file:// / http(s):// URL")],
        target: Annotated[str, typer.Option(help="target column (found when omitted)")] = "",
        budget: Annotated[int, typer.Option(help="time budget in seconds")] = 0,
        project: str = "default", seed: int = 42,
        max_trials: Annotated[int, typer.Option(help="tuning trials (0: default)")] = 0,
        home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
        detach: Annotated[bool, typer.Option(help="submit and return")] = False,
        as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Submit an experiment through the gateway and follow it until the model is published."""
    client = _client(home, gateway)
    try:
        submitted = client.submit(_spec(dataset, target, budget, project, seed, max_trials))
    except GatewayError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from exc
    experiment_id = submitted["experiment_id"]
    if detach:
        print(experiment_id)
        return
    console.print(f"Experiment [bold]{experiment_id}[/] submitted.")
    final = follow(client, experiment_id) or client.get(experiment_id)
    if as_json:
        print(json.dumps(final, indent=2))
    else:
        report(final, home)
    if final.get("status") != "completed":
        raise typer.Exit(1)


@app.command()
def demo(home: HomeOpt = Path(".mlmesh"), budget: int = 120,
         keep: Annotated[bool, typer.Option(help="leave the mesh running")] = False) -> None:
    """The README's demo: start the mesh, run the bundled penguins dataset end to end, query
    the generated serving app, stop everything."""
    from mlmesh_cli.demo import penguins_csv, query_serving_app

    dataset = penguins_csv(home.resolve() / "datasets")
    started_here = runner.read_state(home) is None
    if started_here:
        up(home=home, replicas="", port=8080, grpc_port=50051, timeout=300)
    try:
        state = runner.read_state(home)
        assert state is not None
        client = GatewayClient(state["gateway_url"], api_key=resolve_api_key(home))
        submitted = client.submit({"dataset_uri": dataset.as_uri(), "target": "species",
                                   "time_budget_s": budget, "project": "demo"})
        console.print(f"Experiment [bold]{submitted['experiment_id']}[/] submitted "
                      f"(palmerpenguins, target species).")
        final = follow(client, submitted["experiment_id"])
        report(final, home)
        if final.get("status") != "completed":
            raise typer.Exit(1)
        answer = query_serving_app(final["result"]["serving_app_uri"], dataset, home)
        console.print(f"Serving app answered: {answer}")
    finally:
        if started_here and not keep:
            down(home=home)


def _client(home: Path, gateway: str) -> GatewayClient:
    return GatewayClient(_gateway_url(home, gateway), api_key=resolve_api_key(home))


def _print_letter_or_fail(action: Callable[[], dict[str, Any]], as_json: bool) -> None:
    try:
        letter = action()
    except GatewayError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(letter, indent=2))
        return
    for key in ("id", "status", "source_topic", "experiment_id", "consumer_group", "error_type",
                "error_message", "attempt"):
        console.print(f"[bold]{key:<15}[/] {letter.get(key)}")
    if letter.get("envelope"):
        console.print_json(json.dumps(letter["envelope"]))
    if letter.get("stack"):
        console.print(letter["stack"])


def _call_gateway(action: Callable[[], Any]) -> Any:
    try:
        return action()
    except GatewayError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc


@experiments_app.command("list")
def experiments_list(project: str = "", status: str = "", limit: int = 50,
                     home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
                     as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Experiments, newest first."""
    rows = _call_gateway(lambda: _client(home, gateway).list(project, status, limit))
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table("id", "project", "status", "winner", "test score", "created")
    for row in rows:
        result = row.get("result", {})
        score = result.get("test_score")
        table.add_row(row["experiment_id"], row["project"], row["status"],
                      str(result.get("winner", "")),
                      f"{score:.4f} {result.get('metric', '')}" if score is not None else "",
                      time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(row["created_at"])))
    console.print(table)


@experiments_app.command("show")
def experiments_show(experiment_id: str, home: HomeOpt = Path(".mlmesh"),
                     gateway: GatewayOpt = "",
                     as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One experiment: status, stages and where its results are."""
    record = _call_gateway(lambda: _client(home, gateway).get(experiment_id))
    if as_json:
        print(json.dumps(record, indent=2))
        return
    console.print(f"[bold]{record['experiment_id']}[/] ({record['project']}): "
                  f"{record['status']} {record.get('failure_reason', '')}")
    table = Table("stage", "status", "percent", "message")
    for stage in record["stages"]:
        table.add_row(stage["name"], stage["status"], f"{stage['percent']:.0f}",
                      stage["message"][:80])
    console.print(table)
    if record["status"] == "completed":
        report(record, home)


@experiments_app.command("cancel")
def experiments_cancel(experiment_id: str, reason: str = "", home: HomeOpt = Path(".mlmesh"),
                       gateway: GatewayOpt = "",
                       as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Cancel an experiment; services stop between steps."""
    record = _call_gateway(lambda: _client(home, gateway).cancel(experiment_id, reason))
    if as_json:
        print(json.dumps(record, indent=2))
        return
    console.print(f"{experiment_id}: {record['status']}")


@app.command()
def leaderboard(experiment_id: str, home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """An experiment's leaderboard (CV mean and std per candidate)."""
    record = _call_gateway(lambda: _client(home, gateway).get(experiment_id))
    board = record.get("result", {}).get("leaderboard", [])
    if as_json:
        print(json.dumps(board, indent=2))
        return
    if not board:
        console.print(f"{experiment_id} has no leaderboard yet (status {record['status']})")
        raise typer.Exit(1)
    table = Table("rank", "family", "source", "CV mean", "CV std", "fit s", "device", "MLflow run",
                  title=f"Leaderboard ({record['result'].get('metric')})")
    for rank, row in enumerate(board, 1):
        table.add_row(str(rank), str(row.get("family")), str(row.get("source")),
                      f"{row.get('cv_mean') or 0:.4f}", f"{row.get('cv_std') or 0:.4f}",
                      f"{row.get('fit_seconds') or 0:.1f}", str(row.get("device") or ""),
                      str(row.get("mlflow_run_id") or ""))
    console.print(table)


def _emit(rows: Any, as_json: bool, table: Table) -> None:
    if as_json:
        print(json.dumps(rows, indent=2))
    else:
        console.print(table)


@webhooks_app.command("list")
def webhooks_list(project: str = "default", home: HomeOpt = Path(".mlmesh"),
                  gateway: GatewayOpt = "",
                  as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A project's webhook subscriptions."""
    rows = _call_gateway(lambda: _client(home, gateway).webhooks(project))
    table = Table("id", "url", "event types", title=f"webhooks of {project}")
    for row in rows:
        table.add_row(row["id"], row["url"], ", ".join(row["event_types"]))
    _emit(rows, as_json, table)


@webhooks_app.command("add")
def webhooks_add(url: str, event: Annotated[list[str], typer.Option(
                     help="event type, repeatable (e.g. mlmesh.experiment.completed)")],
                 project: str = "default", secret: str = "", home: HomeOpt = Path(".mlmesh"),
                 gateway: GatewayOpt = "",
                 as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Subscribe a URL; prints the signing secret once."""
    row = _call_gateway(lambda: _client(home, gateway).add_webhook(project, url, event, secret))
    table = Table("id", "url", "secret (shown once)")
    table.add_row(row["id"], row["url"], row["secret"])
    _emit(row, as_json, table)


@webhooks_app.command("remove")
def webhooks_remove(webhook_id: str, home: HomeOpt = Path(".mlmesh"),
                    gateway: GatewayOpt = "") -> None:
    """Remove a subscription."""
    _call_gateway(lambda: _client(home, gateway).remove_webhook(webhook_id))
    console.print(f"{webhook_id} removed")


@webhooks_app.command("deliveries")
def webhooks_deliveries(webhook_id: str, limit: int = 100, home: HomeOpt = Path(".mlmesh"),
                        gateway: GatewayOpt = "",
                        as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """A subscription's delivery log, newest first."""
    rows = _call_gateway(lambda: _client(home, gateway).deliveries(webhook_id, limit))
    table = Table("event", "type", "status", "attempts", "last code", "last error")
    for row in rows:
        table.add_row(row["event_id"], row["event_type"], row["status"], str(row["attempts"]),
                      str(row["last_status_code"]), row["last_error"][:60])
    _emit(rows, as_json, table)


@dlq_app.command("list")
def dlq_list(source_topic: str = "", experiment: str = "",
             status: Annotated[str, typer.Option(help="open, replayed, purged or any")] = "open",
             limit: int = 100, home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Messages that could not be handled, newest first."""
    try:
        body = _client(home, gateway).dead_letters(source_topic, experiment, status, limit)
    except GatewayError as exc:
        console.print(f"[red]{exc}[/]")
        raise typer.Exit(1) from exc
    if as_json:
        print(json.dumps(body, indent=2))
        return
    table = Table("id", "source topic", "experiment", "error", "status",
                  title=f"dead letters ({sum(body['open_by_topic'].values())} open)")
    for letter in body["dead_letters"]:
        table.add_row(letter["id"], letter["source_topic"], letter["experiment_id"],
                      f"{letter['error_type']}: {letter['error_message']}"[:80],
                      letter["status"])
    console.print(table)


@dlq_app.command("show")
def dlq_show(letter_id: str, home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
             as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """One dead letter: the error, its stack and the decoded original envelope."""
    _print_letter_or_fail(lambda: _client(home, gateway).dead_letter(letter_id), as_json)


@dlq_app.command("replay")
def dlq_replay(letter_id: str, home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
               as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Send the original message back to its topic (after fixing the cause)."""
    _print_letter_or_fail(lambda: _client(home, gateway).replay(letter_id), as_json)


@dlq_app.command("purge")
def dlq_purge(letter_id: str, home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Mark a dead letter as dealt with."""
    _print_letter_or_fail(lambda: _client(home, gateway).purge(letter_id), as_json)


@keys_app.command("create")
def keys_create(role: Annotated[str, typer.Option(help="viewer, scientist or admin")],
                project: Annotated[list[str], typer.Option(
                    help="project the key may act on, repeatable; '*' for every project")],
                name: str = "", home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Create an API key; prints the key once (store it now: only its hash is kept)."""
    row = _call_gateway(lambda: _client(home, gateway).create_key(role, project, name))
    table = Table("id", "role", "projects", "key (shown once)")
    table.add_row(row["id"], row["role"], ", ".join(row["projects"]), row["key"])
    _emit(row, as_json, table)


@keys_app.command("list")
def keys_list(include_revoked: Annotated[bool, typer.Option("--all")] = False,
              home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
              as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """API keys within your key's scope (never the keys themselves)."""
    rows = _call_gateway(lambda: _client(home, gateway).keys(include_revoked))
    table = Table("id", "name", "role", "projects", "created", "revoked")
    for row in rows:
        table.add_row(row["id"], row["name"], row["role"], ", ".join(row["projects"]),
                      time.strftime("%Y-%m-%d %H:%M", time.localtime(row["created_at"])),
                      "yes" if row.get("revoked_at") else "")
    _emit(rows, as_json, table)


@keys_app.command("revoke")
def keys_revoke(key_id: str, home: HomeOpt = Path(".mlmesh"), gateway: GatewayOpt = "",
                as_json: Annotated[bool, typer.Option("--json")] = False) -> None:
    """Revoke an API key; it stops working at once."""
    row = _call_gateway(lambda: _client(home, gateway).revoke_key(key_id))
    if as_json:
        print(json.dumps(row, indent=2))
        return
    console.print(f"{key_id} revoked")


@topics_app.command("create")
def topics_create(bootstrap: Annotated[str, typer.Option(envvar="MLMESH_KAFKA_BOOTSTRAP")]
                  = "127.0.0.1:9092") -> None:
    """Create every registry topic and its DLQ on the broker (existing ones are kept)."""
    from mlmesh_common.broker import create_topics

    names = asyncio.run(create_topics(bootstrap))
    console.print(f"{len(names)} topics present on {bootstrap}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
