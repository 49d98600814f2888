//! The playground's service against the real gateway: a cloud channel (a local server speaking
//! OpenAI's format) and a real llama-server loaded for the call. Answers stream in, their figures
//! and cost match the log row, a stopped answer is logged as cancelled, and every call uses the
//! one built-in Playground token.

mod support;

use std::time::Duration;

use burncloud_service_api::{ChatTurn, PlaygroundEvent, PlaygroundRequest, PlaygroundService, PlaygroundStats};
use burncloud_tests::openai_mock::{OpenAiMock, COMPLETION_TOKENS, PROMPT_TOKENS, REPLY};
use serde_json::json;
use support::{prerequisites, Harness};

fn ask(model: &str, text: &str, max_tokens: Option<u32>) -> PlaygroundRequest {
    PlaygroundRequest {
        model: model.into(),
        system: Some("Be brief.".into()),
        temperature: Some(0.0),
        max_tokens,
        turns: vec![ChatTurn { role: "user".into(), content: text.into() }],
    }
}

/// Everything the answer streamed, then how it ended.
async fn answer(
    playground: &dyn PlaygroundService,
    request: PlaygroundRequest,
) -> (String, Result<PlaygroundStats, String>) {
    let mut events = playground.chat(request);
    let mut text = String::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(60), events.recv()).await.expect("an event") {
        match event {
            PlaygroundEvent::Text(piece) => text.push_str(&piece),
            PlaygroundEvent::Finished(stats) => return (text, Ok(stats)),
            PlaygroundEvent::Failed(message) => return (text, Err(message)),
        }
    }
    panic!("the stream ended without an outcome: {text}");
}

#[tokio::test]
async fn the_playground_talks_to_cloud_and_local_models_through_the_gateway() {
    let mock = OpenAiMock::start(Some("sk-upstream-secret-0123456789")).await;
    let h = Harness::start().await;
    h.post(
        "/console/api/channels",
        json!({"name": "cloud", "kind": "openai", "base_url": mock.base_url(),
            "api_key": "sk-upstream-secret-0123456789", "models": ["gpt-4o-mini"]}),
    )
    .await;
    h.put("/console/api/prices/gpt-4o-mini", json!({"input_per_mtok": "1.5", "output_per_mtok": "6"})).await;
    let playground = h.state.playground.clone();
    let local = prerequisites();
    if let Some((_, model)) = &local {
        let copy = h.data_dir().join("tiny-F32.gguf");
        std::fs::copy(model, &copy).unwrap();
        let model_id = h.post("/console/api/models/local/import", json!({"path": copy})).await["id"].clone();
        h.post("/console/api/instances", json!({"model_id": model_id, "ctx_size": 512, "start": false})).await;
    }

    let models = playground.models().await.unwrap();
    let listed: Vec<(&str, &str)> = models.iter().map(|m| (m.id.as_str(), m.owned_by.as_str())).collect();
    assert!(listed.contains(&("gpt-4o-mini", "openai")), "{listed:?}");

    let (text, stats) = answer(playground.as_ref(), ask("gpt-4o-mini", "hello", None)).await;
    let stats = stats.unwrap();
    assert_eq!(text, REPLY);
    assert_eq!((stats.prompt_tokens, stats.completion_tokens), (PROMPT_TOKENS, COMPLETION_TOKENS));
    assert!(stats.first_token_ms.is_some() && stats.total_ms >= stats.first_token_ms.unwrap(), "{stats:?}");
    assert_eq!(stats.cost.unwrap().to_string(), "0.0000855", "21 tokens at 1.5 and 9 at 6 per million");
    let sent = &mock.received()[0].body;
    assert_eq!(sent["messages"][0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(sent["temperature"], 0.0);

    let rows = h.get(&format!("/console/api/logs?request_id={}", stats.request_id)).await;
    let row = &rows["items"][0];
    assert_eq!(row["cost"], "0.0000855");
    assert!(row["is_stream"].as_bool().unwrap());
    let tokens = h.get("/console/api/tokens").await;
    let token = tokens.as_array().unwrap().iter().find(|t| t["name"] == "Playground").expect("the built-in token");
    assert_eq!(row["token_id"], token["id"], "the call is the Playground token's");

    let (_, failed) = answer(playground.as_ref(), ask("no-such-model", "hello", None)).await;
    let message = failed.unwrap_err();
    assert!(message.starts_with("404") && message.contains("no-such-model"), "{message}");
    let tokens = h.get("/console/api/tokens").await;
    assert_eq!(tokens.as_array().unwrap().iter().filter(|t| t["name"] == "Playground").count(), 1, "one token, reused");

    let Some(_) = local else { return };
    assert!(playground.models().await.unwrap().iter().any(|m| m.id == "tiny-F32" && m.owned_by == "local"));
    let (text, stats) = answer(playground.as_ref(), ask("tiny-F32", "hello", Some(6))).await;
    let stats = stats.unwrap();
    assert!(!text.is_empty(), "the local model answered once loaded");
    assert_eq!(stats.completion_tokens, 6);
    assert!(stats.cost.is_none(), "no price set for the local model");

    // Stopped mid-answer: the call ends and is logged as cancelled by the client.
    let mut events = playground.chat(ask("tiny-F32", "hello", Some(3000)));
    assert!(matches!(events.recv().await, Some(PlaygroundEvent::Text(_))));
    drop(events);
    let mut cancelled = serde_json::Value::Null;
    for _ in 0..100 {
        h.state.gateway.log_sink().flush().await;
        cancelled = h.get("/console/api/logs?limit=1").await["items"][0].clone();
        if cancelled["model"] == "tiny-F32" && cancelled["completion_tokens"] != 6 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(cancelled["end_reason"], "client_cancelled", "{cancelled}");
    assert!(cancelled["completion_tokens"].as_u64().unwrap() < 3000, "{cancelled}");
    for instance in h.get("/console/api/instances").await.as_array().unwrap() {
        h.post(&format!("/console/api/instances/{}/stop", instance["id"]), json!({})).await;
    }
}
