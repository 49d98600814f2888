//! Fuzz target: arbitrary bytes through `burncloud_router::fuzzing::stream_events`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| burncloud_router::fuzzing::stream_events(data));
