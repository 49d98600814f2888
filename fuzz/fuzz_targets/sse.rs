//! Fuzz target: arbitrary bytes through `burncloud_router::fuzzing::sse_stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| burncloud_router::fuzzing::sse_stream(data));
