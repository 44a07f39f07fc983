#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| atc::fuzzing::var_interpolation(data));
