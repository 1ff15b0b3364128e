"""Settings read from MLMESH_* environment variables (one place for every knob)."""

from __future__ import annotations

import os
import socket
from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Configuration shared by every service; each field is MLMESH_<FIELD> in the environment."""

    model_config = SettingsConfigDict(env_prefix="MLMESH_", extra="ignore")

    home: Path = Field(default=Path(".mlmesh"), description="embedded state root")
    kafka_bootstrap: str = "127.0.0.1:9092"
    ledger_url: str = Field(default="", description="sqlite:///path or postgresql://...")
    artifact_root: str = Field(default="", description="folder, file:// or s3://bucket/prefix")
    s3_endpoint_url: str | None = None
    mlflow_tracking_uri: str = ""
    trackers: str = Field(default="mlflow", description="run trackers, comma-separated: "
                          "mlflow, wandb (W&B in offline mode unless WANDB_MODE says)")
    wandb_dir: str = Field(default="", description="W&B run folder (default <home>/wandb)")
    optuna_storage: str = Field(default="", description="journal:///path or an RDB URL")
    git_repo: str = ""
    http_port: int = 0
    http_host: str = "127.0.0.1"
    partitions: int = 6
    max_attempts: int = 4
    retry_initial_s: float = 0.5
    retry_max_s: float = 10.0
    breaker_fail_max: int = 5
    breaker_reset_s: float = 30.0
    default_time_budget_s: int = 300
    #: Trials when a spec names none: high enough that the time budget ends tuning.
    default_max_trials: int = 200
    groups: str = Field(default="", description="comma-separated consumer groups to run")
    shutdown_grace_s: float = 30.0
    session_timeout_ms: int = 10_000
    heartbeat_interval_ms: int = 3_000
    max_poll_interval_ms: int = 3_600_000
    instance: str = Field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")
    acquire_archive_max_ratio: float = Field(
        default=200.0, description="refuse an archive member that unpacks to more than this "
        "many times its compressed size (zip-bomb guard)")
    acquire_archive_max_total_bytes: int = Field(
        default=16 * 1024**3, description="refuse an archive whose unpacked bytes exceed this")
    acquire_chunk_bytes: int = Field(
        default=4 * 1024**2, description="bytes of text per streamed conversion block")
    acquire_allow_private: bool = Field(
        default=False, description="let acquire reach loopback, private and link-local "
        "addresses (cloud metadata stays refused unless named in acquire_allowed_hosts)")
    acquire_allowed_hosts: str = Field(
        default="", description="comma-separated host names, *.suffix patterns, addresses "
        "or CIDRs acquire may reach even when they are not public")
    acquire_max_bytes: int = Field(default=10 * 1024**3,
                                   description="largest source acquire downloads")
    acquire_connect_timeout_s: float = 10.0
    acquire_read_timeout_s: float = Field(
        default=60.0, description="longest wait for a response's headers")
    acquire_stall_timeout_s: float = Field(
        default=60.0, description="longest pause without a byte mid-download")
    acquire_max_redirects: int = 10
    acquire_attempts: int = Field(
        default=4, description="tries per download (a broken one resumes over Range)")
    acquire_retry_initial_s: float = 1.0
    watchdog_idle_s: float = Field(
        default=600.0, description="the watchdog re-drives a running experiment after this "
        "many seconds without an event, when no work for its stage is queued or in progress")
    watchdog_interval_s: float = Field(default=10.0, description="seconds between sweeps")
    watchdog_max_redrives: int = Field(default=5, description="re-drives per experiment")
    acquire_retry_max_s: float = 30.0
    monitor_window_rows: int = Field(
        default=200, description="served rows per drift window (a window also closes after "
        "monitor_window_seconds)")
    monitor_window_seconds: float = 300.0
    monitor_decay_window_rows: int = Field(
        default=200, description="rows with ground truth per performance window")
    monitor_join_window_s: float = Field(
        default=86_400.0, description="how long a prediction waits for its ground truth")
    monitor_join_max_pending: int = Field(
        default=1_000_000, description="predictions kept for the ground-truth join per model")
    monitor_drift_share: float = Field(
        default=0.5, description="share of drifted features at which a window drifts")
    monitor_decay_threshold: float = Field(
        default=0.1, description="relative metric loss vs the test score that counts as decay")
    monitor_report_interval_s: float = Field(
        default=60.0, description="least seconds between two drift.detected (each with an "
        "evidently report) of one model version; drifted windows in between are counted")
    monitor_retrain: bool = Field(
        default=False, description="request a retraining experiment on drift or decay")
    monitor_retrain_on: str = Field(
        default="data_drift,prediction_drift,performance_decay",
        description="drift kinds that trigger retraining (comma-separated)")
    monitor_retrain_cooldown_s: float = 3600.0
    monitor_retrain_budget: int = Field(
        default=3, description="most retraining requests per model per budget period")
    monitor_retrain_budget_period_s: float = 86_400.0
    api_max_body_bytes: int = Field(
        default=1024**2, description="largest request body the gateway accepts (413 above)")
    api_rate_per_s: float = Field(
        default=500.0, description="sustained requests per second per API key (429 above)")
    api_rate_burst: int = Field(default=1000, description="requests a key may burst")
    api_key_cache_s: float = Field(
        default=5.0, description="seconds a verified key is trusted without a ledger read "
        "(how long a revocation takes to reach other gateway replicas)")

    @cached_property
    def resolved_home(self) -> Path:
        """The absolute state root, created on first use."""
        path = self.home.expanduser().resolve()
        path.mkdir(parents=True, exist_ok=True)
        return path

    @property
    def resolved_ledger_url(self) -> str:
        return self.ledger_url or f"sqlite:///{self.resolved_home / 'ledger.sqlite3'}"

    @property
    def resolved_artifact_root(self) -> str:
        return self.artifact_root or str(self.resolved_home / "artifacts")

    @property
    def resolved_mlflow_uri(self) -> str:
        return (self.mlflow_tracking_uri or os.environ.get("MLFLOW_TRACKING_URI")
                or f"sqlite:///{self.resolved_home / 'mlflow.sqlite3'}")

    @property
    def resolved_optuna_storage(self) -> str:
        return self.optuna_storage or f"journal:///{self.resolved_home / 'optuna.journal'}"

    @property
    def resolved_git_repo(self) -> Path:
        return Path(self.git_repo).expanduser() if self.git_repo else (
            self.resolved_home / "experiments-repo")

    @property
    def group_filter(self) -> set[str]:
        return {g.strip() for g in self.groups.split(",") if g.strip()}
