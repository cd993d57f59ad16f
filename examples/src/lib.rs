//! weft-examples: runnable examples of weft as a library (see `examples/`).
//!
//! - `embed_pipeline`: a pipeline inside a service — the sandbox's Stripe
//!   (in-process, no network) -> a local Parquet stage -> DuckDB.
//! - `reverse_sync`: a warehouse model synced into the sandbox's Mailchimp;
//!   a re-run sends only what changed.
//! - `custom_source`: a source of your own on `weft_core::Connector`, put
//!   through the shared acceptance suite.
//!
//! `cargo run -p weft-examples --example embed_pipeline` runs one;
//! `cargo test --workspace` runs all three as tests.
