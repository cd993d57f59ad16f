//! The per-API middleware: records requests and writes, enforces the rate
//! limit, and injects the configured faults (latency, 401, 429, 5xx,
//! connection resets, truncated bodies).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use bytes::Bytes;
use http::{HeaderValue, Method, header};

use crate::config::RetryAfterStyle;
use crate::room::{Room, VendorError};
use crate::state::{Clock, RecordedRequest, RecordedWrite};

/// Largest request body the sandbox reads (larger bodies get a 413).
const MAX_BODY_BYTES: usize = 64 * 1024 * 1024;

/// What the middleware needs: the room it guards and the shared clock.
#[derive(Clone)]
pub(crate) struct FaultCtx {
    pub(crate) room: Arc<dyn Room>,
    pub(crate) clock: Arc<Clock>,
}

fn retry_after_value(style: RetryAfterStyle, seq: u64) -> String {
    let style = match style {
        RetryAfterStyle::Mixed => match seq % 3 {
            0 => RetryAfterStyle::Seconds(1),
            1 => RetryAfterStyle::Zero,
            _ => RetryAfterStyle::HttpDate,
        },
        other => other,
    };
    match style {
        RetryAfterStyle::Seconds(n) => n.to_string(),
        RetryAfterStyle::Zero | RetryAfterStyle::Mixed => "0".to_owned(),
        RetryAfterStyle::HttpDate => {
            let at: chrono::DateTime<chrono::Utc> =
                (SystemTime::now() + Duration::from_secs(1)).into();
            at.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
        }
    }
}

fn too_many(ctx: &FaultCtx, style: RetryAfterStyle) -> Response {
    let mut resp = ctx.room.vendor_error(VendorError::RateLimited);
    let value = retry_after_value(style, ctx.room.state().next_retry_seq());
    if let Ok(v) = HeaderValue::from_str(&value) {
        resp.headers_mut().insert(header::RETRY_AFTER, v);
    }
    resp
}

fn is_write(method: &Method) -> bool {
    matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    )
}

/// The middleware wrapped around every vendor route.
pub(crate) async fn apply(State(ctx): State<FaultCtx>, req: Request, next: Next) -> Response {
    let state = ctx.room.state();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    state.record_request(RecordedRequest {
        method: method.to_string(),
        path: path.clone(),
        query,
        at_ms: ctx.clock.elapsed_ms(),
    });
    let req = if is_write(&method) {
        let (parts, body) = req.into_parts();
        let Ok(bytes) = to_bytes(body, MAX_BODY_BYTES).await else {
            return Response::builder()
                .status(http::StatusCode::PAYLOAD_TOO_LARGE)
                .body(Body::empty())
                .unwrap_or_default();
        };
        state.record_write(RecordedWrite {
            method: method.to_string(),
            path,
            body: String::from_utf8_lossy(&bytes).into_owned(),
            at: ctx.clock.now(),
        });
        Request::from_parts(parts, Body::from(bytes))
    } else {
        req
    };

    let faults = state.faults();
    if faults.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(faults.latency_ms)).await;
    }
    if faults.bad_auth {
        return ctx.room.vendor_error(VendorError::Unauthorized);
    }
    if !state.admit() {
        return too_many(&ctx, faults.retry_after);
    }
    if state.roll(faults.rate_limit_rate) {
        return too_many(&ctx, faults.retry_after);
    }
    if state.roll(faults.error_rate) {
        return ctx.room.vendor_error(VendorError::ServerError);
    }
    let resp = next.run(req).await;
    if state.roll(faults.reset_rate) {
        return break_body(resp, Break::Reset).await;
    }
    if state.roll(faults.truncate_rate) {
        return break_body(resp, Break::Truncate).await;
    }
    resp
}

#[derive(Clone, Copy)]
enum Break {
    /// Send half the body, then fail the stream: hyper aborts the connection.
    Reset,
    /// Announce the full `Content-Length`, send half, then end.
    Truncate,
}

async fn break_body(resp: Response, how: Break) -> Response {
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let half: Bytes = bytes.slice(..bytes.len() / 2);
    let body = match how {
        Break::Reset => {
            parts.headers.remove(header::CONTENT_LENGTH);
            Body::from_stream(futures::stream::iter([
                Ok(half),
                Err(std::io::Error::new(
                    std::io::ErrorKind::ConnectionReset,
                    "sandbox fault: connection reset",
                )),
            ]))
        }
        Break::Truncate => {
            parts
                .headers
                .insert(header::CONTENT_LENGTH, HeaderValue::from(bytes.len()));
            Body::from_stream(futures::stream::iter([Ok::<_, std::io::Error>(half)]))
        }
    };
    Response::from_parts(parts, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_styles() {
        assert_eq!(retry_after_value(RetryAfterStyle::Seconds(7), 0), "7");
        assert_eq!(retry_after_value(RetryAfterStyle::Zero, 0), "0");
        assert_eq!(retry_after_value(RetryAfterStyle::Mixed, 0), "1");
        assert_eq!(retry_after_value(RetryAfterStyle::Mixed, 1), "0");
        let date = retry_after_value(RetryAfterStyle::Mixed, 2);
        assert!(date.ends_with(" GMT"), "{date}");
        assert_eq!(date.len(), "Sun, 01 Nov 2026 00:00:00 GMT".len());
    }
}
