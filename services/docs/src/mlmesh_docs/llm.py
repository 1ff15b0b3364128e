"""Optional LLM writer: rewrites the executive summary's narrative from the facts.

Configured by environment, never required:

- ``MLMESH_LLM_API_URL``: base URL of an OpenAI-compatible (``/chat/completions``) or
  Anthropic-compatible (``/messages``) API, e.g. ``https://api.openai.com/v1``.
- ``MLMESH_LLM_API_KEY``: the key (sent as a bearer token or ``x-api-key``; never logged).
- ``MLMESH_LLM_MODEL``: the model name.
- ``MLMESH_LLM_PROVIDER``: ``openai`` (default) or ``anthropic``.

Any failure (network, status, malformed answer, a number in the answer that is not among
the facts) makes ``write_narrative`` return the template narrative and log a warning.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

log = logging.getLogger(__name__)

PROVIDERS = ("openai", "anthropic")
TIMEOUT_S = 30.0
_SYSTEM = (
    "You write the narrative of an executive summary of a machine-learning experiment for "
    "non-technical readers. Use only the facts given as JSON; do not invent numbers; keep "
    "every number exactly as written in the facts or the draft. Plain language, at most "
    "three short paragraphs, Markdown without headings."
)


class LLMConfigError(ValueError):
    """The MLMESH_LLM_* settings are incomplete or name an unknown provider."""


@dataclass(frozen=True)
class LLMConfig:
    """Where and how to call the LLM (the key is kept out of ``repr``)."""

    api_url: str
    model: str
    provider: str = "openai"
    api_key: str = ""

    def __repr__(self) -> str:
        return (f"LLMConfig(api_url={self.api_url!r}, model={self.model!r}, "
                f"provider={self.provider!r})")

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> LLMConfig | None:
        """The configuration from MLMESH_LLM_*; None when MLMESH_LLM_API_URL is unset."""
        env = os.environ if env is None else env
        url = env.get("MLMESH_LLM_API_URL", "").strip()
        if not url:
            return None
        model = env.get("MLMESH_LLM_MODEL", "").strip()
        provider = env.get("MLMESH_LLM_PROVIDER", "openai").strip().lower() or "openai"
        if provider not in PROVIDERS:
            raise LLMConfigError(
                f"MLMESH_LLM_PROVIDER={provider!r} is not supported; use one of {PROVIDERS}"
            )
        if not model:
            raise LLMConfigError("MLMESH_LLM_API_URL is set but MLMESH_LLM_MODEL is empty; "
                                 "name the model to call")
        return cls(url.rstrip("/"), model, provider, env.get("MLMESH_LLM_API_KEY", ""))


def call_llm(config: LLMConfig, facts: Mapping[str, Any], draft: str) -> str:
    """Ask the configured API to rewrite ``draft`` from ``facts``; returns its text."""
    prompt = ("Facts (JSON):\n" + json.dumps(facts, indent=1, default=str)
              + "\n\nDraft narrative to rewrite:\n" + draft)
    with httpx.Client(timeout=TIMEOUT_S) as client:
        if config.provider == "anthropic":
            headers = {"anthropic-version": "2023-06-01", "content-type": "application/json"}
            if config.api_key:
                headers["x-api-key"] = config.api_key
            response = client.post(f"{config.api_url}/messages", headers=headers, json={
                "model": config.model, "max_tokens": 800, "system": _SYSTEM,
                "messages": [{"role": "user", "content": prompt}]})
            response.raise_for_status()
            blocks = response.json().get("content") or []
            text = "".join(b.get("text", "") for b in blocks if b.get("type") == "text")
        else:
            headers = {"content-type": "application/json"}
            if config.api_key:
                headers["authorization"] = f"Bearer {config.api_key}"
            response = client.post(f"{config.api_url}/chat/completions", headers=headers, json={
                "model": config.model, "temperature": 0.2,
                "messages": [{"role": "system", "content": _SYSTEM},
                             {"role": "user", "content": prompt}]})
            response.raise_for_status()
            text = response.json()["choices"][0]["message"]["content"] or ""
    return text.strip()


_NUMBER = re.compile(r"(?<![\w.])-?\d[\d,]*(?:\.\d+)?%?")


def _numbers(text: str) -> set[str]:
    return {m.group(0).replace(",", "").rstrip("%") for m in _NUMBER.finditer(text)}


def write_narrative(
    facts: Mapping[str, Any], draft: str, config: LLMConfig | None = None
) -> tuple[str, str]:
    """The narrative and who wrote it (``"template"`` or ``"llm:<model>"``).

    Without configuration the template ``draft`` is returned. With one, the LLM's rewrite
    is used unless the call fails, the answer is empty, or it states a number that
    appears in neither the facts nor the draft; then the draft is kept and a warning logged.
    """
    if config is None:
        try:
            config = LLMConfig.from_env()
        except LLMConfigError as exc:
            log.warning("LLM writer disabled, using the template narrative: %s", exc)
            return draft, "template"
    if config is None:
        return draft, "template"
    try:
        text = call_llm(config, facts, draft)
    except (httpx.HTTPError, KeyError, IndexError, TypeError, ValueError) as exc:
        # The message names the error type and status only: never the key or the prompt.
        detail = (f"HTTP {exc.response.status_code}" if isinstance(exc, httpx.HTTPStatusError)
                  else type(exc).__name__)
        log.warning("LLM writer failed (%s at %s); using the template narrative",
                    detail, config.api_url)
        return draft, "template"
    if not text:
        log.warning("LLM writer returned an empty answer; using the template narrative")
        return draft, "template"
    allowed = _numbers(draft) | _numbers(json.dumps(facts, default=str))
    invented = sorted(_numbers(text) - allowed)
    if invented:
        log.warning("LLM narrative states numbers not among the facts (%s); using the "
                    "template narrative", ", ".join(invented[:5]))
        return draft, "template"
    return text, f"llm:{config.model}"
