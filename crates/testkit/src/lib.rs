//! Test helpers shared by the controllers' tests (dev-dependency only; never shipped).

pub mod chart;
mod mock_api;

pub use mock_api::MockApi;
