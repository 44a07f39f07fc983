//! Large list answers written to the response as they are serialized, a
//! chunk at a time, instead of built whole first: a page of versions or
//! builds then costs its rows in memory, not its rows plus a JSON tree plus
//! the finished text, for every client listing it at once.

use axum::body::{Body, Bytes};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// About how many bytes each write to the response carries.
const CHUNK_BYTES: usize = 32 * 1024;

/// A `200` answering the JSON array of `render(item)` for every item, each
/// item rendered (and dropped) only when the client is ready for it.
pub fn json_array<T, R, F>(items: Vec<T>, mut render: F) -> Response
where
    T: Send + 'static,
    R: Serialize,
    F: FnMut(T) -> R + Send + 'static,
{
    let mut items = items.into_iter();
    let mut opened = false;
    let mut closed = false;
    let chunks = std::iter::from_fn(move || {
        if closed {
            return None;
        }
        let mut chunk = Vec::with_capacity(CHUNK_BYTES);
        while chunk.len() < CHUNK_BYTES {
            let Some(item) = items.next() else {
                chunk.extend_from_slice(if opened { b"]" } else { b"[]" });
                closed = true;
                break;
            };
            chunk.push(if opened { b',' } else { b'[' });
            opened = true;
            if let Err(err) = serde_json::to_writer(&mut chunk, &render(item)) {
                closed = true;
                return Some(Err(std::io::Error::other(err)));
            }
        }
        Some(Ok(Bytes::from(chunk)))
    });
    let mut response = Body::from_stream(futures_util::stream::iter(chunks)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn text(response: Response) -> String {
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    #[tokio::test]
    async fn writes_the_array_an_item_at_a_time_in_chunks() {
        assert_eq!(text(json_array(Vec::<i64>::new(), |n| n)).await, "[]");
        assert_eq!(text(json_array(vec![1, 2, 3], |n| n * 10)).await, "[10,20,30]");
        let big: Vec<String> = (0..100).map(|i| format!("{i:0>1000}")).collect();
        let expected = serde_json::to_string(&big).unwrap();
        let response = json_array(big, |s| s);
        let mut body = response.into_body().into_data_stream();
        let mut chunks = Vec::new();
        while let Some(chunk) = futures_util::StreamExt::next(&mut body).await {
            chunks.push(chunk.unwrap());
        }
        assert!(chunks.len() > 2, "{} chunks", chunks.len());
        assert_eq!(chunks.concat(), expected.as_bytes());
    }
}
