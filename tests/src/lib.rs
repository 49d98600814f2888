//! Test support shared by the integration tests, the end-to-end tests and the benchmark: local
//! servers that speak remote providers' exact wire formats.

pub mod openai_mock;
