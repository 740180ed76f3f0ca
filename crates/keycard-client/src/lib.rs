//! The integrator's SDK for NetSuite Token-Based Authentication (and `keycard serve`):
//! [`Credentials`] and [`Realm`], a [`Signer`] built on the protocol crate
//! [`keycard_oauth1`], and an async HTTP [`Client`] that signs every request, retries
//! concurrency rejections with exponential backoff and jitter (a fresh nonce and timestamp on
//! each attempt), never retries anything else, and returns typed errors that carry NetSuite's
//! error code and the `x-request-id` of the answer.
//!
//! This crate has no base-string or signature code of its own: every signature comes from
//! [`keycard_oauth1::client::sign`]. The [`Signer`] reads no clock and draws no randomness
//! (nonce and timestamp are arguments); the [`Client`] takes a [`Clock`] and a [`Randomness`]
//! with system defaults, so tests can fix both. Secrets are zeroized on drop and never appear
//! in `Debug` output or errors.
//!
//! ```no_run
//! use keycard_client::{Call, Client, Credentials, Realm};
//!
//! # async fn demo() -> Result<(), keycard_client::Error> {
//! let credentials = Credentials::new("consumer key", "consumer secret")
//!     .with_token("token id", "token secret");
//! let client = Client::builder("https://1234567.restlets.api.netsuite.com", credentials)
//!     .realm(Realm::new("1234567"))
//!     .build()?;
//! let info = client.token_info().await?;
//! println!("{}", info["roleName"]);
//! let customers = client
//!     .send(&Call::get("/services/rest/record/v1/customer").query("limit", "5"))
//!     .await?;
//! println!("{}", customers.json()?);
//! # Ok(())
//! # }
//! ```

mod client;
mod clock;
mod credentials;
mod error;
mod hosts;
mod retry;
mod signer;

pub use client::{
    Call, Client, ClientBuilder, RequestToken, Response, RetryNotice, UserCredentials, parse_form,
};
pub use clock::{Clock, OsRandom, Randomness, SystemClock};
pub use credentials::{Credentials, Realm};
pub use error::{ApiError, Error};
pub use hosts::service_base;
pub use keycard_oauth1::client::Signed;
pub use keycard_oauth1::{Explanation, SignatureMethod};
pub use retry::RetryPolicy;
pub use signer::{SignRequest, Signer};
