//! A tower layer that refuses a request message above the size limit with
//! `ResourceExhausted`, as grpc-go (and so SpiceDB) does, before tonic decodes it.
//!
//! tonic's own limit (`max_decoding_message_size`) answers `OutOfRange`. Rather than rewrite
//! tonic's answer afterwards (which for a streaming request sits in the trailers of a
//! response already under way), the layer wraps the request body and reads the 5-byte header
//! that opens every gRPC message (a compression flag, then the length as a big-endian
//! `u32`). When a header announces more than the limit, the body fails with a
//! `ResourceExhausted` [`Status`], which tonic's decoder hands to the handler as the error of
//! that message (tonic downcasts a body error to the `Status` inside), so the payload is never
//! buffered. tonic's limit stays configured as well, as a second line.

use std::pin::Pin;
use std::task::{Context, Poll, ready};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use tonic::Status;
use tower_layer::Layer;
use tower_service::Service;

/// The bytes of a gRPC message header: a compression flag and a `u32` length.
const HEADER_LEN: usize = 5;

/// The error type of [`LimitedBody`], the one `tonic::body::Body::new` takes.
type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Wraps every request body in a [`LimitedBody`] with the limit `max` (in bytes).
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameLimitLayer {
    max: usize,
}

impl FrameLimitLayer {
    /// Refuses messages longer than `max` bytes.
    pub(crate) fn new(max: usize) -> Self {
        Self { max }
    }
}

impl<S> Layer<S> for FrameLimitLayer {
    type Service = FrameLimit<S>;

    fn layer(&self, inner: S) -> Self::Service {
        FrameLimit {
            inner,
            max: self.max,
        }
    }
}

/// The service [`FrameLimitLayer`] wraps around the gRPC router.
#[derive(Debug, Clone)]
pub(crate) struct FrameLimit<S> {
    inner: S,
    max: usize,
}

impl<S> Service<http::Request<tonic::body::Body>> for FrameLimit<S>
where
    S: Service<http::Request<tonic::body::Body>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let max = self.max;
        self.inner.call(request.map(|body| {
            tonic::body::Body::new(LimitedBody {
                inner: body,
                scanner: Scanner::new(max),
            })
        }))
    }
}

pin_project! {
    /// A request body that fails with `ResourceExhausted` at the header of a message longer
    /// than the limit.
    struct LimitedBody<B> {
        #[pin]
        inner: B,
        scanner: Scanner,
    }
}

impl<B> Body for LimitedBody<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if this.scanner.failed {
            return Poll::Ready(None);
        }
        match ready!(this.inner.poll_frame(cx)) {
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref()
                    && let Err(status) = this.scanner.scan(data)
                {
                    return Poll::Ready(Some(Err(Box::new(status))));
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Some(Err(err)) => Poll::Ready(Some(Err(err.into()))),
            None => Poll::Ready(None),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.scanner.failed || self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Follows the message framing across data chunks of any size.
#[derive(Debug)]
struct Scanner {
    max: usize,
    /// Payload bytes of the current message still to come (then a header).
    remaining: usize,
    /// The header read so far.
    header: [u8; HEADER_LEN],
    /// How many bytes of `header` have arrived.
    header_len: usize,
    /// A message was refused; the body ends.
    failed: bool,
}

impl Scanner {
    fn new(max: usize) -> Self {
        Self {
            max,
            remaining: 0,
            header: [0; HEADER_LEN],
            header_len: 0,
            failed: false,
        }
    }

    /// Consumes one chunk of the body; fails at a header announcing more than the limit.
    fn scan(&mut self, mut data: &[u8]) -> Result<(), Status> {
        while !data.is_empty() {
            if self.remaining > 0 {
                let n_skipped = self.remaining.min(data.len());
                self.remaining -= n_skipped;
                data = &data[n_skipped..];
                continue;
            }
            let n_taken = (HEADER_LEN - self.header_len).min(data.len());
            self.header[self.header_len..self.header_len + n_taken]
                .copy_from_slice(&data[..n_taken]);
            self.header_len += n_taken;
            data = &data[n_taken..];
            if self.header_len == HEADER_LEN {
                self.header_len = 0;
                let [_, len @ ..] = self.header;
                let len = usize::try_from(u32::from_be_bytes(len)).unwrap_or(usize::MAX);
                if len > self.max {
                    self.failed = true;
                    // grpc-go's wording, which SpiceDB clients see.
                    return Err(Status::resource_exhausted(format!(
                        "grpc: received message larger than max ({len} vs. {})",
                        self.max
                    )));
                }
                self.remaining = len;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frame(len: u32) -> Vec<u8> {
        let mut out = vec![0];
        out.extend(len.to_be_bytes());
        out.extend(std::iter::repeat_n(b'x', len as usize));
        out
    }

    #[test]
    fn messages_up_to_the_limit_pass_in_chunks_of_any_size() {
        let body: Vec<u8> = [frame(10), frame(0), frame(3), frame(10)].concat();
        for chunk in 1..=body.len() {
            let mut scanner = Scanner::new(10);
            for piece in body.chunks(chunk) {
                scanner.scan(piece).unwrap();
            }
            assert_eq!((scanner.remaining, scanner.header_len), (0, 0));
        }
    }

    #[test]
    fn a_header_above_the_limit_is_resource_exhausted() {
        let body: Vec<u8> = [frame(3), frame(11)].concat();
        for chunk in 1..=body.len() {
            let mut scanner = Scanner::new(10);
            let err = body
                .chunks(chunk)
                .find_map(|piece| scanner.scan(piece).err())
                .unwrap();
            assert_eq!(err.code(), tonic::Code::ResourceExhausted);
            assert_eq!(
                err.message(),
                "grpc: received message larger than max (11 vs. 10)"
            );
            assert!(scanner.failed);
        }
    }
}
