//! The dashboard and the call log: what BurnCloud has spent and served, read live from the
//! log service.

mod chart;
mod dashboard;
mod logs;

pub use dashboard::Dashboard;
pub use logs::Logs;
