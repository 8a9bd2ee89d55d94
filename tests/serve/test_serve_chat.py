"""OpenAI chat completions through the openai SDK: the CPU classifier backend (fast, always) and the
real SmolLM2-135M GGUF (`slow`: loading it takes 10-60 s on the shared CPU)."""

from __future__ import annotations

import json
import re

import httpx
import openai
import pytest

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

RCM = [{"role": "user", "content": "Analyze the following CVE description and map it to the appropriate CWE. "
        "CVE Description: SQL injection vulnerability in login.php in Acme CMS 2.1 allows remote attackers "
        "to execute arbitrary SQL commands via the username parameter."}]
MESSAGES = [{"role": "system", "content": "You are a concise security assistant."},
            {"role": "user", "content": "What is SQL injection? Answer in one sentence."}]


def _sdk(live, key: str = "unused") -> openai.OpenAI:
    return openai.OpenAI(base_url=live.url + "/v1", api_key=key, max_retries=0, timeout=120)


def _collect(stream) -> tuple[str, list[str], str | None, object]:
    pieces, finish, usage = [], None, None
    for chunk in stream:
        usage = chunk.usage or usage
        for choice in chunk.choices:
            pieces.append(choice.delta.content or "")
            finish = choice.finish_reason or finish
    return "".join(pieces), [p for p in pieces if p], finish, usage


def test_models_list(server):
    assert [m.id for m in _sdk(server).models.list().data] == ["classifier:default"]


def test_classifier_chat_answers_rcm_prompts(server):
    reply = _sdk(server).chat.completions.create(model="classifier:default", messages=RCM)
    text = reply.choices[0].message.content
    assert reply.object == "chat.completion" and reply.model == "classifier:default"
    assert text.splitlines()[-1] == "CWE-89"
    assert reply.usage.completion_tokens > 0 and reply.usage.total_tokens > reply.usage.prompt_tokens

    streamed, _, finish, usage = _collect(_sdk(server).chat.completions.create(
        model="whatever", messages=RCM, stream=True, stream_options={"include_usage": True}))
    assert streamed == text and finish == "stop" and usage.completion_tokens == reply.usage.completion_tokens


def test_raw_sse_framing(server):
    body = {"model": "x", "messages": RCM, "stream": True}
    with httpx.stream("POST", server.url + "/v1/chat/completions", json=body, timeout=60) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        lines = [line for line in r.iter_lines() if line]
    assert all(line.startswith("data: ") for line in lines)
    assert lines[-1] == "data: [DONE]"
    first = json.loads(lines[0][6:])
    assert first["object"] == "chat.completion.chunk" and first["choices"][0]["delta"]["role"] == "assistant"


def test_chat_limits_are_422(server):
    sdk = _sdk(server)
    with pytest.raises(openai.UnprocessableEntityError, match="limit of 64"):
        sdk.chat.completions.create(model="m", messages=RCM, max_tokens=100_000)
    with pytest.raises(openai.UnprocessableEntityError, match="messages"):
        sdk.chat.completions.create(model="m", messages=[])
    with pytest.raises(openai.UnprocessableEntityError, match="n"):
        sdk.chat.completions.create(model="m", messages=RCM, n=2)
    with pytest.raises(openai.UnprocessableEntityError, match="role"):
        sdk.chat.completions.create(model="m", messages=[{"role": "wizard", "content": "hi"}])


def test_chat_without_a_model_is_503_with_a_clear_message(keyed_server):
    with pytest.raises(openai.InternalServerError, match="--model") as info:
        _sdk(keyed_server, keyed_server.api_key).chat.completions.create(model="any", messages=MESSAGES)
    assert info.value.status_code == 503


@pytest.mark.slow
def test_smollm2_completion_and_stream_agree(lm_server):
    sdk = _sdk(lm_server)
    assert [m.id for m in sdk.models.list().data] == ["hf:smollm2"]
    reply = sdk.chat.completions.create(model="hf:smollm2", messages=MESSAGES, max_tokens=12)
    text = reply.choices[0].message.content
    assert text.strip() and reply.choices[0].finish_reason in ("stop", "length")
    assert 0 < reply.usage.completion_tokens <= 13 and reply.usage.prompt_tokens > 5

    streamed, pieces, finish, usage = _collect(sdk.chat.completions.create(
        model="hf:smollm2", messages=MESSAGES, max_tokens=12, stream=True, stream_options={"include_usage": True}))
    assert len(pieces) > 1, "a language model streams in several pieces"
    assert streamed.strip() == text.strip()  # greedy decoding: the same text either way
    assert finish in ("stop", "length") and usage.completion_tokens > 0

    cut = sdk.chat.completions.create(model="hf:smollm2", messages=MESSAGES, max_tokens=16, stop=["SQL"])
    assert "SQL" not in cut.choices[0].message.content
    metrics = httpx.get(lm_server.url + "/metrics").text
    assert re.search(r'cyberslm_generated_tokens_total\{model="hf:smollm2"\} [1-9]', metrics)
