//! Fuzz target: arbitrary bytes through `burncloud_router::fuzzing::multipart`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| burncloud_router::fuzzing::multipart(data));
