//! The server side of HTTP/1.1 on netlib, shared by the daemons with an HTTP port: login_server
//! (`/msg_server`), msfs (image uploads and downloads) and http_msg_server (a JSON admin API).
//!
//! A crate of its own beside `tt-common` rather than a module in it: only those three daemons
//! speak HTTP, so `httparse` stays out of the PDU-only ones, and the crate depends on nothing
//! but netlib, so a daemon can use it from a plain [`netlib::Handler`] as well as from
//! `tt_common::PduService::read` (the bytes of a connection that does not speak PDUs).
//!
//! One [`HttpConn`] per connection turns the connection's [`netlib::Buffer`] into [`Request`]s
//! and writes [`Response`]s:
//!
//! - request line and headers are parsed with `httparse`, again only after a new line end
//!   arrived, so a head trickled in byte by byte is parsed once per line, not once per byte;
//! - the body is framed by `Content-Length` or by chunked transfer coding (decoded; chunk
//!   extensions and trailers are read and dropped); any other transfer coding is refused with
//!   [`HttpError::UnsupportedEncoding`] (501), as is `Content-Length` together with
//!   `Transfer-Encoding` ([`HttpError::Malformed`], 400);
//! - every size is bounded by [`Limits`]: the head, the number of header fields, the body and
//!   the whole request; the bytes of a request are consumed from the input as they are parsed,
//!   so a large upload never sits twice in memory;
//! - keep-alive: HTTP/1.1 keeps the connection unless the request says `Connection: close`,
//!   HTTP/1.0 closes it unless the request says `Connection: keep-alive`; a server can also
//!   close after every response ([`HttpConn::keep_alive`]); every response says which in its
//!   `Connection` header;
//! - pipelining: requests are handed out one at a time, in order; the next one is parsed only
//!   after the previous one was answered. A response that comes later (from a worker thread or
//!   another server) is written with [`HttpConn::respond`]; meanwhile the connection's further
//!   bytes are held by the `HttpConn` (at most [`Limits::max_request`] of them), and
//!   [`HttpConn::resume`] goes on with them;
//! - streamed responses: [`HttpConn::start_stream`] writes a head announcing the body's length,
//!   the owner writes the body (a file, chunk by chunk from `on_drain`), then
//!   [`HttpConn::finish_stream`]; meanwhile further requests wait as behind a pending response;
//! - `Expect: 100-continue`: [`HttpConn::take_continue`] says when [`CONTINUE`] is due.
//!
//! Responses are written the way the original daemons write theirs: `Name:value` without a
//! space, `Connection` and `Content-Length` first (see [`Response`]).

mod conn;
mod request;
mod response;
pub mod styled_json;

pub use conn::{Answer, CONTINUE, HttpConn, HttpError, Limits};
pub use request::Request;
pub use response::{Response, Status};
