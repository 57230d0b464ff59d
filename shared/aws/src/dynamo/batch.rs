//! Batch requests: many writes, deletes or consistent reads in as few requests as DynamoDB
//! allows, sending again whatever a request left unprocessed (DynamoDB's answer to
//! throttling) after a pause.

use std::time::Duration;

use aws_sdk_dynamodb::types::{DeleteRequest, KeysAndAttributes, WriteRequest};

use colloquy_core::ports::{StoreError, StoreResult};

use super::requests::sdk_error;
use super::{DynamoStore, Item};

/// DynamoDB accepts at most 25 writes per BatchWriteItem and 100 keys per BatchGetItem.
const BATCH_WRITE: usize = 25;
const BATCH_GET: usize = 100;

/// What one batch request did: the items it read (none for writes), and the requests or
/// keys it left unprocessed.
struct Round<T> {
    found: Vec<Item>,
    unprocessed: Vec<T>,
}

/// How long to wait before sending again what a batch request left unprocessed; `None` once
/// it is time to give up. Full jitter, as the SDK's own back-off; five retries wait at most
/// 25 + 50 + 100 + 200 + 400 ms.
fn unprocessed_backoff(retry: u32) -> Option<Duration> {
    const RETRIES: u32 = 5;
    if retry > RETRIES {
        return None;
    }
    let ceiling = crate::aws_clients::INITIAL_BACKOFF * (1 << (retry - 1));
    Some(ceiling.mul_f64(rand::random::<f64>()))
}

/// Sends `pending` (one request's worth of writes or keys) with `send`, then again what
/// DynamoDB left unprocessed, with back-off, until nothing is left; every item read on the
/// way. `what` names the requests in the error when DynamoDB keeps some unprocessed.
async fn until_processed<T, F, Fut>(mut pending: Vec<T>, what: &str, mut send: F) -> StoreResult<Vec<Item>>
where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = StoreResult<Round<T>>>,
{
    let mut found = Vec::new();
    let mut retry = 0_u32;
    while !pending.is_empty() {
        let round = send(pending).await?;
        found.extend(round.found);
        pending = round.unprocessed;
        if !pending.is_empty() {
            retry += 1;
            let Some(pause) = unprocessed_backoff(retry) else {
                return Err(StoreError::Unavailable(format!("DynamoDB kept some batch {what} unprocessed")));
            };
            tokio::time::sleep(pause).await;
        }
    }
    Ok(found)
}

impl DynamoStore {
    /// Writes (puts or deletes), 25 per request.
    pub(super) async fn batch_write(&self, requests: Vec<WriteRequest>) -> StoreResult<()> {
        for chunk in requests.chunks(BATCH_WRITE) {
            until_processed(chunk.to_vec(), "writes", |requests| self.write_round(requests)).await?;
        }
        Ok(())
    }

    /// Deletes the items with these keys; how many keys there were.
    pub(super) async fn batch_delete(&self, keys: Vec<Item>) -> StoreResult<usize> {
        let total = keys.len();
        let requests = keys
            .into_iter()
            .map(|key| {
                let delete = DeleteRequest::builder().set_key(Some(key)).build().map_err(sdk_error)?;
                Ok(WriteRequest::builder().delete_request(delete).build())
            })
            .collect::<StoreResult<_>>()?;
        self.batch_write(requests).await?;
        Ok(total)
    }

    /// Consistent reads, 100 keys per request: the items that exist, in no particular order.
    pub(super) async fn batch_get(&self, keys: Vec<Item>) -> StoreResult<Vec<Item>> {
        let mut found = Vec::new();
        for chunk in keys.chunks(BATCH_GET) {
            found.extend(until_processed(chunk.to_vec(), "reads", |keys| self.get_round(keys)).await?);
        }
        Ok(found)
    }

    async fn write_round(&self, requests: Vec<WriteRequest>) -> StoreResult<Round<WriteRequest>> {
        let output =
            self.client.batch_write_item().request_items(&self.table, requests).send().await.map_err(sdk_error)?;
        // Absent when every write was processed.
        let unprocessed = output.unprocessed_items.and_then(|mut m| m.remove(&self.table)).unwrap_or_default();
        Ok(Round { found: Vec::new(), unprocessed })
    }

    async fn get_round(&self, keys: Vec<Item>) -> StoreResult<Round<Item>> {
        let request =
            KeysAndAttributes::builder().set_keys(Some(keys)).consistent_read(true).build().map_err(sdk_error)?;
        let output =
            self.client.batch_get_item().request_items(&self.table, request).send().await.map_err(sdk_error)?;
        // Absent when no item was found, or every key was processed.
        Ok(Round {
            found: output.responses.and_then(|mut r| r.remove(&self.table)).unwrap_or_default(),
            unprocessed: output
                .unprocessed_keys
                .and_then(|mut m| m.remove(&self.table))
                .map(|k| k.keys)
                .unwrap_or_default(),
        })
    }
}
