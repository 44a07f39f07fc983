#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atc::fuzzing::instance_vars(data));
