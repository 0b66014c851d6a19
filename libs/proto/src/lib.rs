//! Generated gRPC types, servers and clients of `proto/goose/v1`.
#![allow(
    clippy::all,
    clippy::pedantic,
    missing_debug_implementations,
    rust_2018_idioms
)]

pub mod goose {
    pub mod v1 {
        tonic::include_proto!("goose.v1");
    }
}

pub use goose::v1;
