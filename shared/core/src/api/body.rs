//! Request bodies as they arrive: read only after the route and the key were checked, never
//! past the route's limit, and classified when they fail (size → 413, time → 408, anything
//! else → 400).

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures_util::{Stream, StreamExt};

use crate::api::error::ApiError;
use crate::ports::{BlobStream, StoreError};

/// Why reading a request body failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    /// More bytes than the route accepts; carries the limit.
    #[error("the body is larger than {0} bytes")]
    TooLarge(usize),
    /// The client stopped sending before the body was complete.
    #[error("the body was not sent in time")]
    TimedOut,
    /// The body broke off or is not valid HTTP framing (e.g. bad chunked encoding).
    #[error("the body is malformed: {0}")]
    Malformed(String),
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> Self {
        match error {
            BodyError::TooLarge(limit) => ApiError::PayloadTooLarge(limit),
            BodyError::TimedOut => ApiError::RequestTimeout,
            BodyError::Malformed(detail) => {
                ApiError::BadRequest(format!("The request body could not be read: {detail}"))
            }
        }
    }
}

/// A request body still being received, chunk by chunk.
pub type BodyStream = Pin<Box<dyn Stream<Item = Result<Bytes, BodyError>> + Send>>;

/// A request body as the front end has it: complete (Lambda events) or arriving (the local
/// server).
pub enum IncomingBody {
    Full(Bytes),
    Stream(BodyStream),
}

impl IncomingBody {
    pub fn empty() -> Self {
        Self::Full(Bytes::new())
    }

    /// The body as a stream, whatever it is.
    pub(crate) fn into_stream(self) -> BodyStream {
        match self {
            Self::Full(bytes) if bytes.is_empty() => Box::pin(futures_util::stream::empty()),
            Self::Full(bytes) => Box::pin(futures_util::stream::once(async move { Ok(bytes) })),
            Self::Stream(stream) => stream,
        }
    }

    /// The whole body, refused (413) as soon as it passes `limit`; at most `limit` bytes are held.
    pub(crate) async fn collect(self, limit: usize) -> Result<Bytes, BodyError> {
        match self {
            Self::Full(bytes) if bytes.len() > limit => Err(BodyError::TooLarge(limit)),
            Self::Full(bytes) => Ok(bytes),
            Self::Stream(mut stream) => {
                let mut body = BytesMut::new();
                while let Some(chunk) = stream.next().await {
                    let chunk = chunk?;
                    if body.len() + chunk.len() > limit {
                        return Err(BodyError::TooLarge(limit));
                    }
                    body.extend_from_slice(&chunk);
                }
                Ok(body.freeze())
            }
        }
    }
}

/// Passes a body through until it exceeds `limit` bytes, then fails with
/// [`BodyError::TooLarge`] (and ends).
pub(crate) fn limited(stream: BodyStream, limit: usize) -> BodyStream {
    // (bytes seen, ended)
    Box::pin(stream.scan((0usize, false), move |(seen, ended), chunk| {
        if *ended {
            return std::future::ready(None);
        }
        let item = chunk.and_then(|chunk| {
            *seen = seen.saturating_add(chunk.len());
            if *seen > limit { Err(BodyError::TooLarge(limit)) } else { Ok(chunk) }
        });
        *ended = item.is_err();
        std::future::ready(Some(item))
    }))
}

/// What a [`Recorded`] stream saw go wrong, for the caller to report once the consumer
/// (a multipart parser, a blob store) has given up with its own, vaguer error.
#[derive(Debug, Clone, Default)]
pub(crate) struct Failure(Arc<Mutex<Option<BodyError>>>);

impl Failure {
    /// The failure seen, if any.
    pub fn get(&self) -> Option<BodyError> {
        self.0.lock().map(|slot| slot.clone()).unwrap_or(None)
    }

    fn record(&self, error: &BodyError) {
        if let Ok(mut slot) = self.0.lock() {
            slot.get_or_insert_with(|| error.clone());
        }
    }
}

/// A body stream that remembers its failure in a [`Failure`] as it passes it on.
pub(crate) struct Recorded<S> {
    inner: S,
    failure: Failure,
}

impl<S> Recorded<S> {
    pub fn new(inner: S, failure: &Failure) -> Self {
        Self { inner, failure: failure.clone() }
    }
}

impl<S: Stream<Item = Result<Bytes, BodyError>> + Unpin> Stream for Recorded<S> {
    type Item = Result<Bytes, BodyError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let next = self.inner.poll_next_unpin(cx);
        if let Poll::Ready(Some(Err(error))) = &next {
            self.failure.record(error);
        }
        next
    }
}

/// A body stream as a blob to store: a body failure becomes a store error (the store then
/// cleans up and fails), and is kept in `failure` so the caller reports the real cause.
pub(crate) fn as_blob(
    stream: impl Stream<Item = Result<Bytes, BodyError>> + Send + 'static,
    failure: &Failure,
) -> BlobStream {
    let failure = failure.clone();
    Box::pin(stream.map(move |chunk| {
        chunk.map_err(|error| {
            failure.record(&error);
            StoreError::Conflict(format!("upload interrupted: {error}"))
        })
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chunks(sizes: &[usize]) -> BodyStream {
        let items: Vec<Result<Bytes, BodyError>> = sizes.iter().map(|n| Ok(Bytes::from(vec![b'x'; *n]))).collect();
        Box::pin(futures_util::stream::iter(items))
    }

    #[tokio::test]
    async fn collect_stops_at_the_limit() {
        assert_eq!(IncomingBody::Stream(chunks(&[3, 3])).collect(6).await.unwrap().len(), 6);
        assert_eq!(IncomingBody::Stream(chunks(&[3, 4])).collect(6).await, Err(BodyError::TooLarge(6)));
        assert_eq!(IncomingBody::Full(Bytes::from_static(b"1234567")).collect(6).await, Err(BodyError::TooLarge(6)));
    }

    #[tokio::test]
    async fn limited_streams_fail_once_and_end() {
        let items: Vec<_> = limited(chunks(&[4, 4, 4]), 6).collect().await;
        assert_eq!(items.len(), 2);
        assert!(items[0].is_ok());
        assert_eq!(items[1], Err(BodyError::TooLarge(6)));
    }

    #[tokio::test]
    async fn recorded_failures_are_kept_for_the_caller() {
        let failure = Failure::default();
        let broken: BodyStream =
            Box::pin(futures_util::stream::iter(vec![Ok(Bytes::from_static(b"a")), Err(BodyError::TimedOut)]));
        let items: Vec<_> = as_blob(broken, &failure).collect().await;
        assert!(items[1].is_err());
        assert_eq!(failure.get(), Some(BodyError::TimedOut));
    }
}
