//! Test support shared by the integration tests, the end-to-end tests and the benchmark: local
//! servers that speak remote providers' exact wire formats (OpenAI's, Anthropic's and Gemini's,
//! from one server, each on its own routes, OpenAI's Responses API among them).

pub mod agent;
pub mod anthropic_mock;
pub mod gemini_mock;
pub mod hub_mock;
pub mod media_mock;
pub mod mock_state;
pub mod openai_mock;
pub mod postgres;
pub mod release_mock;
pub mod responses_mock;
