//! The window's pages for local models: search the hubs and download with live progress, manage
//! the GGUF models on disk, and deploy them on llama-server.

mod deployments;
mod fit;
mod models;
mod runtimes;

pub use deployments::Deployments;
pub use models::Models;
pub use runtimes::RuntimeCard;
