"""Request bodies the server accepts. Pydantic checks every length limit, so bad input is a 422
that names the field, never a 500 deep inside a model.

The limits are module constants so the page, the docs and the tests agree on them.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_TEXT_CHARS = 20_000  # one CVE description or question; real NVD descriptions are < 4,000
MAX_TRIAGE_ITEMS = 256
MAX_TOP_K = 20
MAX_MESSAGES = 64
MAX_CHAT_CHARS = 32_000  # all message contents together
MAX_OPTIONS = 10
MAX_STOP = 4

Text = Annotated[str, Field(min_length=1, max_length=MAX_TEXT_CHARS)]


class TriageRequest(BaseModel):
    """One or many CVE descriptions. `text` and `texts` are alternatives; `ids` name them in the answer."""

    model_config = ConfigDict(extra="forbid")

    text: Text | None = None
    texts: list[Text] | None = Field(default=None, min_length=1, max_length=MAX_TRIAGE_ITEMS)
    ids: list[Annotated[str, Field(max_length=64)]] | None = None
    k: int = Field(default=3, ge=1, le=MAX_TOP_K)

    @model_validator(mode="after")
    def _one_input(self) -> TriageRequest:
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' (one description) or 'texts' (a list)")
        if self.ids is not None and len(self.ids) != len(self.items()):
            raise ValueError("'ids' must have one id per description")
        return self

    def items(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class AskRequest(BaseModel):
    """A CTI question; with `options` ({"A": "...", ...}) it is multiple choice."""

    model_config = ConfigDict(extra="forbid")

    question: Text
    options: dict[Annotated[str, Field(min_length=1, max_length=8)], Text] | None = Field(
        default=None, min_length=2, max_length=MAX_OPTIONS)
    k: int = Field(default=5, ge=1, le=MAX_TOP_K)


class TextPart(BaseModel):
    type: Literal["text"]
    text: str


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")  # name, tool_call_id, ... are accepted and unused

    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[TextPart]

    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class StreamOptions(BaseModel):
    include_usage: bool = False


class ChatRequest(BaseModel):
    """The OpenAI chat completions body. Unknown fields (tools, logit_bias, ...) are ignored, as
    llama.cpp and vLLM servers do, so existing clients work unchanged."""

    model_config = ConfigDict(extra="ignore")

    model: str = ""
    messages: list[ChatMessage] = Field(min_length=1, max_length=MAX_MESSAGES)
    max_tokens: int | None = Field(default=None, ge=1)
    max_completion_tokens: int | None = Field(default=None, ge=1)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    top_p: float | None = Field(default=None, gt=0.0, le=1.0)
    seed: int | None = None
    stop: str | list[str] | None = None
    n: int = Field(default=1, ge=1, le=1)
    stream: bool = False
    stream_options: StreamOptions | None = None

    @field_validator("messages")
    @classmethod
    def _total_length(cls, messages: list[ChatMessage]) -> list[ChatMessage]:
        total = sum(len(m.text()) for m in messages)
        if total > MAX_CHAT_CHARS:
            raise ValueError(f"messages hold {total} characters; the limit is {MAX_CHAT_CHARS}")
        return messages

    @field_validator("stop")
    @classmethod
    def _stop_list(cls, stop: str | list[str] | None) -> list[str]:
        stops = [stop] if isinstance(stop, str) else list(stop or [])
        if len(stops) > MAX_STOP:
            raise ValueError(f"at most {MAX_STOP} stop sequences")
        return stops
