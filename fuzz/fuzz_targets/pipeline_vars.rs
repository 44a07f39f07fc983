#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atc::fuzzing::pipeline_vars(data));
