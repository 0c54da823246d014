"""pydantic-ai and LangChain talking to the structgen server: structured outputs that always validate."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

pytestmark = pytest.mark.integration


class Person(BaseModel):
    name: str
    age: int


def test_langchain_with_structured_output(tiny_server) -> None:  # type: ignore[no-untyped-def]
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(
        model="tiny", base_url=tiny_server.base_url, api_key="unused", max_tokens=40, temperature=1.0
    )
    for method in ("json_schema", "function_calling"):
        structured = llm.with_structured_output(Person, method=method)
        person = structured.invoke("Invent a person.")
        assert isinstance(person, Person)


def test_pydantic_ai_agent_output_type(tiny_server) -> None:  # type: ignore[no-untyped-def]
    pytest.importorskip("pydantic_ai")
    from pydantic_ai import Agent
    from pydantic_ai.models.openai import OpenAIChatModel
    from pydantic_ai.providers.openai import OpenAIProvider

    model = OpenAIChatModel("tiny", provider=OpenAIProvider(base_url=tiny_server.base_url, api_key="unused"))
    agent = Agent(model, output_type=Person, model_settings={"max_tokens": 48})
    result = agent.run_sync("Invent a person.")
    assert isinstance(result.output, Person)


@pytest.mark.slow
def test_langchain_with_the_real_model(smollm2_server) -> None:  # type: ignore[no-untyped-def]
    langchain_openai = pytest.importorskip("langchain_openai")
    llm = langchain_openai.ChatOpenAI(
        model="smollm2", base_url=smollm2_server.base_url, api_key="unused", max_tokens=40, temperature=0
    )
    person = llm.with_structured_output(Person, method="json_schema").invoke(
        "Alice is 31 years old. Extract the person."
    )
    assert isinstance(person, Person)
