//! The table itself: its local secondary indexes, its TTL attribute, and how to create it
//! (for local runs and tests; on AWS, `template.yaml` creates it).

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, CreateGlobalSecondaryIndexAction, GlobalSecondaryIndex,
    GlobalSecondaryIndexUpdate, KeySchemaElement, KeyType, LocalSecondaryIndex, Projection, ProjectionType,
    ScalarAttributeType, StreamSpecification, StreamViewType, TimeToLiveSpecification,
};

use colloquy_core::ports::StoreResult;

use super::DynamoStore;
use super::requests::sdk_error;

/// The table's local secondary indexes: (index name, sort-key attribute). `template.yaml`
/// declares the same (a test compares them).
pub const INDEXES: [(&str, &str); 2] = [("LSI1", "LSI1SK"), ("LSI2", "LSI2SK")];
/// The app-wide conversation index: (index name, partition-key attribute, sort-key attribute).
/// Its partition key is an app's shard (`keys::app_conversations_pk`), its sort key the
/// conversation's `updated_at` and id; tombstones carry neither, so it holds live
/// conversations only. `template.yaml` declares the same (a test compares them).
pub const APP_INDEX: (&str, &str, &str) = ("GSI1", "GSI1PK", "GSI1SK");
/// The TTL attribute of tombstones, task flags, jobs and rate windows.
pub const TTL_ATTRIBUTE: &str = "expires_at";

/// A string attribute of the table's keys.
fn attribute(name: &str) -> StoreResult<AttributeDefinition> {
    AttributeDefinition::builder()
        .attribute_name(name)
        .attribute_type(ScalarAttributeType::S)
        .build()
        .map_err(sdk_error)
}

/// One element of a key schema.
fn schema(name: &str, kind: KeyType) -> StoreResult<KeySchemaElement> {
    KeySchemaElement::builder().attribute_name(name).key_type(kind).build().map_err(sdk_error)
}

impl DynamoStore {
    /// Creates the table as `template.yaml` defines it (keys, two local secondary indexes,
    /// on-demand billing, a stream for the purge, TTL on `expires_at`). False when it exists.
    pub async fn create_table(&self) -> StoreResult<bool> {
        let lsi = |index: &str, sort: &str| -> StoreResult<LocalSecondaryIndex> {
            LocalSecondaryIndex::builder()
                .index_name(index)
                .key_schema(schema("PK", KeyType::Hash)?)
                .key_schema(schema(sort, KeyType::Range)?)
                .projection(Projection::builder().projection_type(ProjectionType::All).build())
                .build()
                .map_err(sdk_error)
        };
        let created = self
            .client
            .create_table()
            .attribute_definitions(attribute(APP_INDEX.1)?)
            .attribute_definitions(attribute(APP_INDEX.2)?)
            .global_secondary_indexes(self.app_index()?)
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .attribute_definitions(attribute("PK")?)
            .attribute_definitions(attribute("SK")?)
            .attribute_definitions(attribute(INDEXES[0].1)?)
            .attribute_definitions(attribute(INDEXES[1].1)?)
            .key_schema(schema("PK", KeyType::Hash)?)
            .key_schema(schema("SK", KeyType::Range)?)
            .local_secondary_indexes(lsi(INDEXES[0].0, INDEXES[0].1)?)
            .local_secondary_indexes(lsi(INDEXES[1].0, INDEXES[1].1)?)
            .stream_specification(
                StreamSpecification::builder()
                    .stream_enabled(true)
                    .stream_view_type(StreamViewType::NewAndOldImages)
                    .build()
                    .map_err(sdk_error)?,
            )
            .send()
            .await;
        match created {
            Ok(_) => {}
            Err(error) if error.as_service_error().is_some_and(|e| e.is_resource_in_use_exception()) => {
                self.add_app_index().await?;
                return Ok(false);
            }
            Err(error) => return Err(sdk_error(error)),
        }
        let ttl_spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(TTL_ATTRIBUTE)
            .build()
            .map_err(sdk_error)?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(ttl_spec)
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(true)
    }

    fn app_index(&self) -> StoreResult<GlobalSecondaryIndex> {
        GlobalSecondaryIndex::builder()
            .index_name(APP_INDEX.0)
            .key_schema(schema(APP_INDEX.1, KeyType::Hash)?)
            .key_schema(schema(APP_INDEX.2, KeyType::Range)?)
            .projection(Projection::builder().projection_type(ProjectionType::All).build())
            .build()
            .map_err(sdk_error)
    }

    /// Adds the app-wide index to a table created before it existed (conversations enter it as
    /// they are next written). Nothing when it is there.
    async fn add_app_index(&self) -> StoreResult<()> {
        let table = self.client.describe_table().table_name(&self.table).send().await.map_err(sdk_error)?;
        let present = table
            .table
            .and_then(|t| t.global_secondary_indexes)
            .unwrap_or_default()
            .iter()
            .any(|index| index.index_name() == Some(APP_INDEX.0));
        if present {
            return Ok(());
        }
        let index = self.app_index()?;
        let create = CreateGlobalSecondaryIndexAction::builder()
            .index_name(APP_INDEX.0)
            .set_key_schema(Some(index.key_schema().to_vec()))
            .set_projection(index.projection().cloned())
            .build()
            .map_err(sdk_error)?;
        self.client
            .update_table()
            .table_name(&self.table)
            .attribute_definitions(attribute(APP_INDEX.1)?)
            .attribute_definitions(attribute(APP_INDEX.2)?)
            .global_secondary_index_updates(GlobalSecondaryIndexUpdate::builder().create(create).build())
            .send()
            .await
            .map_err(sdk_error)?;
        Ok(())
    }
}
