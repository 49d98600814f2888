//! The window's pages for local models: search the hubs, download with live progress, and manage
//! the GGUF models on disk.

mod models;

pub use models::Models;
