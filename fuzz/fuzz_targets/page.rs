//! Article and listing pages: the extractor and the link finders. What is asserted, and the input format: ../checks.rs.
#![no_main]

#[path = "../checks.rs"]
mod checks;

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| checks::page(data));
