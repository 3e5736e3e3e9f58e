//! stacd: a STAC API and OGC API Features catalog server for aerial and drone
//! imagery, on an embedded SQLite file or PostgreSQL + PostGIS.
//!
//! Layers, from the outside in: [`routes`] (axum handlers that only extract,
//! call and wrap), [`api`] and [`search`] (framework-free documents, links,
//! pagination and parameter checks) and [`store`] (one [`store::Backend`]
//! trait with a SQLite and a PostgreSQL implementation).

pub mod api;
pub mod auth;
pub mod collection_search;
pub mod datetime;
pub mod error;
pub mod fields;
pub mod filter;
pub mod geometry;
pub mod load;
pub mod metrics;
pub mod paging;
pub mod prepare;
pub mod routes;
pub mod search;
pub mod server;
pub mod sort;
pub mod store;
pub mod telemetry;
pub mod text;
pub mod transactions;

pub use error::{Error, Result};
