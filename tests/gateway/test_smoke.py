from tests.openai_schema import validate


def test_chat_roundtrip(client, upstream, mock_upstream):
    response = client.chat.completions.with_raw_response.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": "hello there"}]
    )
    body = response.http_response.json()
    validate("CreateChatCompletionResponse", body)
    assert body["choices"][0]["message"]["content"] == "mock: hello there"
    assert body["_proxy_info"]["provider"] == "primary"
    assert response.headers["x-gateway-provider"] == "primary"


def test_chat_stream(client, upstream):
    chunks = list(
        client.chat.completions.create(
            model="gpt-4o-mini", messages=[{"role": "user", "content": "a b c"}], stream=True
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "mock: a b c"
