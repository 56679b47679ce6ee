#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fpr_jose::fuzzing::jwks_parse(data));
