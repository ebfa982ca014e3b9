//! See `huddle_tests::fuzz::fragment`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| huddle_tests::fuzz::fragment(data));
