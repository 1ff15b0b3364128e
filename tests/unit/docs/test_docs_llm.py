"""The optional LLM writer against local fake OpenAI- and Anthropic-compatible servers."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from mlmesh_docs.llm import LLMConfig, LLMConfigError, write_narrative

FACTS = {"target": "species", "test_score": "0.9710", "baseline_score": "0.4412",
         "n_rows": 344, "model": "lightgbm"}
DRAFT = "The model predicts species with accuracy 0.9710 against 0.4412 for guessing."
SECRET = "sk-test-secret-123"


class FakeLLM:
    """A local HTTP server answering like an OpenAI or Anthropic API; records requests."""

    def __init__(self, provider: str, answer: str = "", status: int = 200) -> None:
        self.provider, self.answer, self.status = provider, answer, status
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                fake.requests.append({"path": self.path, "headers": dict(self.headers),
                                      "body": body})
                if fake.status != 200:
                    payload = {"error": {"message": "overloaded"}}
                elif fake.provider == "anthropic":
                    payload = {"type": "message", "role": "assistant",
                               "content": [{"type": "text", "text": fake.answer}]}
                else:
                    payload = {"choices": [{"index": 0, "message": {
                        "role": "assistant", "content": fake.answer}}]}
                data = json.dumps(payload).encode()
                self.send_response(fake.status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake() -> Iterator[callable]:
    servers: list[FakeLLM] = []

    def start(provider: str, answer: str = "", status: int = 200) -> FakeLLM:
        servers.append(FakeLLM(provider, answer, status))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_openai_compatible_rewrite_is_used(fake):
    server = fake("openai", "In plain words: the model gets 0.9710 right, guessing 0.4412.")
    config = LLMConfig(server.url, "gpt-test", "openai", SECRET)
    text, writer = write_narrative(FACTS, DRAFT, config)
    assert text == "In plain words: the model gets 0.9710 right, guessing 0.4412."
    assert writer == "llm:gpt-test"
    request = server.requests[0]
    assert request["path"] == "/v1/chat/completions"
    assert request["headers"]["authorization"] == f"Bearer {SECRET}"
    assert request["body"]["model"] == "gpt-test"
    assert "0.9710" in request["body"]["messages"][1]["content"]


def test_anthropic_compatible_rewrite_is_used(fake):
    server = fake("anthropic", "Accuracy is 0.9710 on 344 rows.")
    config = LLMConfig.from_env({"MLMESH_LLM_API_URL": server.url, "MLMESH_LLM_MODEL": "claude-t",
                                 "MLMESH_LLM_PROVIDER": "anthropic",
                                 "MLMESH_LLM_API_KEY": SECRET})
    text, writer = write_narrative(FACTS, DRAFT, config)
    assert (text, writer) == ("Accuracy is 0.9710 on 344 rows.", "llm:claude-t")
    request = server.requests[0]
    assert request["path"] == "/v1/messages"
    assert request["headers"]["x-api-key"] == SECRET
    assert request["headers"]["anthropic-version"]
    assert request["body"]["system"] and request["body"]["max_tokens"] > 0


def test_server_error_falls_back_to_the_template_and_keeps_the_key_out_of_logs(fake, caplog):
    server = fake("openai", status=503)
    caplog.set_level(logging.WARNING, logger="mlmesh_docs.llm")
    text, writer = write_narrative(FACTS, DRAFT, LLMConfig(server.url, "m", "openai", SECRET))
    assert (text, writer) == (DRAFT, "template")
    assert "HTTP 503" in caplog.text and SECRET not in caplog.text


def test_unreachable_server_falls_back(caplog):
    caplog.set_level(logging.WARNING, logger="mlmesh_docs.llm")
    config = LLMConfig("http://127.0.0.1:9/v1", "m", "openai", SECRET)
    assert write_narrative(FACTS, DRAFT, config) == (DRAFT, "template")
    assert "ConnectError" in caplog.text


def test_invented_numbers_and_empty_answers_fall_back(fake, caplog):
    caplog.set_level(logging.WARNING, logger="mlmesh_docs.llm")
    invented = fake("openai", "The model is 99.9% accurate.")
    assert write_narrative(FACTS, DRAFT, LLMConfig(invented.url, "m"))[1] == "template"
    assert "99.9" in caplog.text
    empty = fake("anthropic", "")
    assert write_narrative(FACTS, DRAFT, LLMConfig(empty.url, "m", "anthropic"))[1] == "template"


def test_without_configuration_the_template_is_used(monkeypatch):
    monkeypatch.delenv("MLMESH_LLM_API_URL", raising=False)
    assert LLMConfig.from_env() is None
    assert write_narrative(FACTS, DRAFT) == (DRAFT, "template")


def test_bad_configuration_is_explained_and_falls_back(monkeypatch, caplog):
    with pytest.raises(LLMConfigError, match="MLMESH_LLM_PROVIDER"):
        LLMConfig.from_env({"MLMESH_LLM_API_URL": "http://x", "MLMESH_LLM_MODEL": "m",
                            "MLMESH_LLM_PROVIDER": "cohere"})
    with pytest.raises(LLMConfigError, match="MLMESH_LLM_MODEL"):
        LLMConfig.from_env({"MLMESH_LLM_API_URL": "http://x"})
    monkeypatch.setenv("MLMESH_LLM_API_URL", "http://127.0.0.1:9")
    monkeypatch.delenv("MLMESH_LLM_MODEL", raising=False)
    caplog.set_level(logging.WARNING, logger="mlmesh_docs.llm")
    assert write_narrative(FACTS, DRAFT) == (DRAFT, "template")
    assert "MLMESH_LLM_MODEL" in caplog.text
    assert SECRET not in repr(LLMConfig("u", "m", "openai", SECRET))


def test_executive_summary_uses_the_llm_narrative_set_by_environment(
        fake, monkeypatch, penguins_experiment, tmp_path):
    from mlmesh_docs.generate import StoredArtifacts, generate_docs
    from mlmesh_docs.reports import ReportContext

    exp = penguins_experiment
    server = fake("openai", "Rewritten for the board: it predicts species very well.")
    monkeypatch.setenv("MLMESH_LLM_API_URL", server.url)
    monkeypatch.setenv("MLMESH_LLM_MODEL", "writer-1")
    monkeypatch.setenv("MLMESH_LLM_API_KEY", SECRET)
    context = ReportContext(spec={"experiment_id": "exp-llm"}, profile=exp.profile,
                            prep=exp.prep, leaderboard=exp.selection["leaderboard"],
                            selection=exp.selection, tuning=exp.selection["tuning"])
    stored = StoredArtifacts(str(exp.store_root), exp.prepared_uri, exp.selection_uri)
    out = generate_docs(context, exp.prepared_dir, exp.select_dir / "model.joblib", tmp_path,
                        stored=stored, seed=7)
    summary = out["executive_summary.md"].read_text()
    assert "Rewritten for the board: it predicts species very well." in summary
    assert "Narrative written by llm:writer-1" in summary
    sent = server.requests[0]["body"]["messages"][1]["content"]
    assert "species" in sent and "We built a model" in sent  # facts and the template draft
    assert SECRET not in (tmp_path / "facts.json").read_text()
