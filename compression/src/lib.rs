//! `ddb-export:core/compression` as a component (the `compressor` world): gzip streams made by
//! the very code our host runs natively (`ddb-export-data-files`' `Flate2Gzip`: flate2 with
//! zlib-rs), so that a host without its own (jco, a component engine) gives the default
//! component the same bytes. Wire its export to the default component's import, or compose the
//! two (`wac plug`).

use std::cell::RefCell;

use ddb_export_data_files::framing::{Flate2Gzip, Gzip as _, GzipLevel};

mod bindings {
    wit_bindgen::generate!({
        world: "compressor",
        path: "../wit",
    });
}

use bindings::exports::ddb_export::core::compression::{Guest, GuestGzipStream};

struct Component;

impl Guest for Component {
    type GzipStream = GzipStream;
}

/// A stream; `None` once finished (using it then traps, as the host's does).
struct GzipStream(RefCell<Option<Flate2Gzip>>);

impl GuestGzipStream for GzipStream {
    fn new(level: u8) -> Self {
        let level = GzipLevel::new(level.min(9)).unwrap_or_else(|_| unreachable!("levels are at most 9 here"));
        Self(RefCell::new(Some(Flate2Gzip::new(level))))
    }

    fn append(&self, bytes: Vec<u8>) -> Vec<u8> {
        let mut gzip = self.0.borrow_mut();
        let gzip = gzip.as_mut().unwrap_or_else(|| panic!("append to a gzip stream after its finish"));
        // flate2 writes to memory: it cannot fail.
        gzip.append(&bytes).unwrap_or_default()
    }

    fn finish(&self) -> Vec<u8> {
        let gzip = self.0.borrow_mut().take();
        let mut gzip = gzip.unwrap_or_else(|| panic!("a gzip stream finished twice"));
        gzip.finish().unwrap_or_default()
    }
}

#[cfg(target_arch = "wasm32")]
bindings::export!(Component with_types_in bindings);
