//! URL canonicalization (the exact-duplicate key). What is asserted, and the input format: ../checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::url(data));
