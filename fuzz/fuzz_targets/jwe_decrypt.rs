#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| fpr_jose::fuzzing::jwe_decrypt(data));
