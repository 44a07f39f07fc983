#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atc::fuzzing::build_plan(data));
