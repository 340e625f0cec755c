//! ddb-export's integration tests: one binary, shared helpers (see `util`).
//!
//! `export` runs the real `ddb-export` binary against real stand-in servers (dynalite for
//! DynamoDB, s3s-fs for S3) started per test on 127.0.0.1, and checks its output with an
//! independent checker (`tests/check_export.py`). `component` runs the real component under
//! the host's limits through the library API. `scripts/install-standins` installs the servers.

mod catalog;
mod component;
mod consistent;
mod embedding;
mod engines;
mod export;
mod fanout;
mod fast_path;
mod faults;
mod incremental;
mod ion;
mod items;
mod obelisk;
mod plugins;
mod restore;
mod resume;
mod roundtrip;
mod safety;
mod sandbox;
mod second_runtime;
mod step;
mod util;
mod verify;
mod workflows;
