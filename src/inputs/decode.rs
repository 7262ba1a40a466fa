//! Running a Parquet decoder on untrusted bytes: its panics become errors (SPEC §8).
//!
//! Takes a closure that decodes with polars; gives its result, or the panic's reason when the
//! decoder panicked on corrupt bytes (it can, on a flipped footer or page byte). Every read of a
//! Parquet input (call files' footers and chunks, small tables) goes through [`guarded`].

use std::cell::Cell;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;

thread_local! {
    /// Set while this thread runs a guarded decode.
    static DECODING: Cell<bool> = const { Cell::new(false) };
}

/// A caught panic is reported as an input error, so its default message ("thread panicked
/// at ...") must not reach stderr as well. One hook, installed once, is silent while the
/// panicking thread decodes and hands every other panic to the hook that was there before.
fn quiet_while_decoding() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if !DECODING.with(Cell::get) {
                previous(info);
            }
        }));
    });
}

/// Runs `decode`; `Err(reason)` when it panicked. Nothing it touched is observed after a panic:
/// whatever it was building is discarded.
pub fn guarded<T>(decode: impl FnOnce() -> T) -> Result<T, String> {
    quiet_while_decoding();
    let was = DECODING.with(|d| d.replace(true));
    let decoded = panic::catch_unwind(AssertUnwindSafe(decode));
    DECODING.with(|d| d.set(was));
    decoded.map_err(|panic| {
        panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .map_or_else(|| "no reason given".to_string(), |r| crate::text::shown(&r))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spec_8_a_decoder_panic_is_an_error_and_other_panics_still_panic() {
        assert_eq!(guarded(|| 7), Ok(7));
        let caught = guarded(|| -> u8 { panic!("thrift bool field \u{1b}") });
        assert_eq!(caught, Err("thrift bool field \\u{1b}".to_string()));
        // Outside a guarded decode, the flag is clear again.
        assert!(!DECODING.with(Cell::get));
    }
}
