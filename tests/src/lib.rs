//! Test support shared by the integration tests, the end-to-end tests and the benchmark: local
//! servers that speak remote providers' exact wire formats (OpenAI's and Anthropic's, from one
//! server, each on its own route).

pub mod anthropic_mock;
pub mod openai_mock;
