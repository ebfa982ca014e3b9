//! See `huddle_tests::fuzz::offer`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huddle_tests::fuzz::offer(data));
