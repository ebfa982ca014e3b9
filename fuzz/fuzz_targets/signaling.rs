//! See `huddle_tests::fuzz::signaling`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huddle_tests::fuzz::signaling(data));
