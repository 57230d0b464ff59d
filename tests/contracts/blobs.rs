use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use colloquy_core::domain::DownloadHeaders;
use colloquy_core::ports::{BlobRange, BlobStore, BlobStream, StoreError, StoreResult};
use colloquy_embedded::fs_blobs::FsBlobStore;
use futures_util::StreamExt;

/// `None` for stores without URLs of their own, else a checked round trip through the URLs.
async fn contract(store: Arc<dyn BlobStore>, has_urls: bool) {
    let key = format!("contract/{}/hello.txt", uuid::Uuid::new_v4());
    assert_eq!(store.get_blob(&key, None).await.unwrap(), None);
    assert!(store.stream_blob(&key).await.unwrap().is_none());
    store.put_blob(&key, "text/plain", Bytes::from_static(b"hello, world")).await.unwrap();

    let whole = store.get_blob(&key, None).await.unwrap().unwrap();
    assert_eq!(
        (&whole.bytes[..], whole.content_type.as_str(), whole.total_size),
        (&b"hello, world"[..], "text/plain", 12)
    );
    let part = store.get_blob(&key, Some(BlobRange { start: 7, end: Some(10) })).await.unwrap().unwrap();
    assert_eq!((&part.bytes[..], part.total_size), (&b"worl"[..], 12));
    let tail = store.get_blob(&key, Some(BlobRange { start: 7, end: None })).await.unwrap().unwrap();
    assert_eq!(&tail.bytes[..], b"world");
    let beyond = store.get_blob(&key, Some(BlobRange { start: 50, end: None })).await.unwrap().unwrap();
    assert!(beyond.bytes.is_empty());

    let big = Bytes::from((0..300_000u32).map(|i| (i % 251) as u8).collect::<Vec<u8>>());
    let big_key = format!("{key}.bin");
    store.put_blob(&big_key, "application/octet-stream", big.clone()).await.unwrap();
    let (mut stream, content_type, size) = store.stream_blob(&big_key).await.unwrap().unwrap();
    assert_eq!((content_type.as_str(), size), ("application/octet-stream", 300_000));
    let mut streamed = Vec::new();
    while let Some(chunk) = stream.next().await {
        streamed.extend_from_slice(&chunk.unwrap());
    }
    assert_eq!(streamed, big.to_vec());

    // Stored as HTML; the URL must answer with the headers it was signed with instead.
    store.put_blob(&key, "text/html", Bytes::from_static(b"hello, world")).await.unwrap();
    let served = DownloadHeaders {
        content_type: "application/octet-stream".into(),
        content_disposition: "attachment; filename*=UTF-8''hello.txt".into(),
        cache_control: "private, max-age=60".into(),
    };
    let get_url = store.presign_get(&key, Duration::from_secs(60), &served).await.unwrap();
    let put_url = store.presign_put(&format!("{key}.put"), "text/plain", 8, Duration::from_secs(60)).await.unwrap();
    assert_eq!((get_url.is_some(), put_url.is_some()), (has_urls, has_urls));
    if let (Some(get_url), Some(put_url)) = (get_url, put_url) {
        let signed: Vec<String> = url_query(&put_url, "X-Amz-SignedHeaders").split(';').map(str::to_owned).collect();
        assert!(signed.contains(&"content-length".to_owned()), "the length is signed: {signed:?}");
        for (parameter, value) in [
            ("response-content-type", &served.content_type),
            ("response-content-disposition", &served.content_disposition),
            ("response-cache-control", &served.cache_control),
        ] {
            assert_eq!(&url_query(&get_url, parameter), value, "{get_url}");
        }
        let fetched = reqwest::get(&get_url).await.unwrap();
        assert_eq!(fetched.status(), 200);
        let header = |name: &str| fetched.headers().get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
        assert_eq!(header("content-type").as_ref(), Some(&served.content_type));
        assert_eq!(header("content-disposition").as_ref(), Some(&served.content_disposition));
        assert_eq!(header("cache-control").as_ref(), Some(&served.cache_control));
        assert_eq!(fetched.bytes().await.unwrap(), Bytes::from_static(b"hello, world"));
        let client = reqwest::Client::new();
        let put = client.put(&put_url).header("content-type", "text/plain").body("uploaded").send().await.unwrap();
        assert!(put.status().is_success(), "{}", put.status());
        let uploaded = store.get_blob(&format!("{key}.put"), None).await.unwrap().unwrap();
        assert_eq!(&uploaded.bytes[..], b"uploaded");
    }

    store.delete_blob(&key).await.unwrap();
    store.delete_blob(&key).await.unwrap();
    assert_eq!(store.get_blob(&key, None).await.unwrap(), None);
}

#[tokio::test]
async fn filesystem_blobs() {
    let dir = std::env::temp_dir().join(format!("colloquy-blobs-{}", uuid::Uuid::new_v4()));
    contract(Arc::new(FsBlobStore::new(&dir)), false).await;
    let store = FsBlobStore::new(&dir);
    assert!(store.put_blob("../escape", "text/plain", Bytes::new()).await.is_err(), "keys cannot leave the root");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn s3_blobs_on_moto() {
    contract(Arc::new(colloquy_tests::aws::s3_blobs().await), true).await;
}

/// A query parameter of a URL, decoded.
fn url_query(url: &str, name: &str) -> String {
    let query = url.split_once('?').map_or("", |(_, q)| q);
    form_urlencoded::parse(query.as_bytes()).find(|(k, _)| k == name).map(|(_, v)| v.into_owned()).unwrap_or_default()
}

/// Streamed writes: small and multi-part blobs arrive whole; a stream that fails leaves
/// nothing readable under its key.
async fn streamed_contract(store: Arc<dyn BlobStore>) {
    let chunks = |sizes: Vec<usize>, fail_at_end: bool| -> BlobStream {
        let mut items: Vec<StoreResult<Bytes>> =
            sizes.into_iter().enumerate().map(|(i, n)| Ok(Bytes::from(vec![(i % 251) as u8; n]))).collect();
        if fail_at_end {
            items.push(Err(StoreError::Conflict("the client went away".into())));
        }
        Box::pin(futures_util::stream::iter(items))
    };
    let key = format!("contract/{}/streamed", uuid::Uuid::new_v4());
    let size = store.put_blob_stream(&key, "text/plain", chunks(vec![10, 20, 30], false)).await.unwrap();
    assert_eq!(size, 60);
    let blob = store.get_blob(&key, None).await.unwrap().unwrap();
    assert_eq!((blob.bytes.len(), blob.content_type.as_str()), (60, "text/plain"));
    assert_eq!(&blob.bytes[10..12], &[1, 1]);

    // Over S3's part size: a multipart upload, completed in order.
    let large_key = format!("{key}.large");
    let sizes = vec![3 * 1024 * 1024; 6];
    let size = store.put_blob_stream(&large_key, "application/octet-stream", chunks(sizes, false)).await.unwrap();
    assert_eq!(size, 18 * 1024 * 1024);
    let blob = store
        .get_blob(&large_key, Some(BlobRange { start: 9 * 1024 * 1024 - 1, end: Some(9 * 1024 * 1024) }))
        .await
        .unwrap()
        .unwrap();
    assert_eq!((&blob.bytes[..], blob.total_size), (&[2u8, 3][..], 18 * 1024 * 1024));

    // Broken off, small or large: nothing is left that reads as the blob.
    for sizes in [vec![5, 5], vec![3 * 1024 * 1024; 4]] {
        let broken = format!("{key}.broken-{}", sizes.len());
        assert!(store.put_blob_stream(&broken, "text/plain", chunks(sizes, true)).await.is_err());
        assert_eq!(store.get_blob(&broken, None).await.unwrap(), None);
    }
}

#[tokio::test]
async fn filesystem_blobs_streamed() {
    let dir = std::env::temp_dir().join(format!("colloquy-blobs-{}", uuid::Uuid::new_v4()));
    streamed_contract(Arc::new(FsBlobStore::new(&dir))).await;
    // No partial files stay behind either.
    let mut leftovers = Vec::new();
    let mut pending = vec![dir.clone()];
    while let Some(next) = pending.pop() {
        for entry in std::fs::read_dir(next).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                pending.push(path);
            } else if path.to_string_lossy().contains(".partial") {
                leftovers.push(path);
            }
        }
    }
    assert!(leftovers.is_empty(), "{leftovers:?}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn s3_blobs_streamed_on_moto() {
    streamed_contract(Arc::new(colloquy_tests::aws::s3_blobs().await)).await;
}
