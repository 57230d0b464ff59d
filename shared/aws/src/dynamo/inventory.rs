//! What the table holds of an app or of some of its end users (`Inventory`): a Scan of the
//! whole table, counting every item that names the app (in its key or its `app_id`) by kind —
//! the first part of its partition key, and for an end user's partition the first part of its
//! sort key. It trusts no index, so it is slow on a large table: a proof, not a query.

use std::collections::HashSet;

use async_trait::async_trait;

use colloquy_core::domain::{AppId, EndUserId};
use colloquy_core::ports::{Holdings, Inventory, StoreResult};

use super::codec::{Read, s};
use super::requests::Scan;
use super::{DynamoStore, Item};

/// The attributes an item is judged by.
const PROJECTION: &str = "PK, SK, id, end_user_id, conversation_end_user_id, conversation_id";

/// An item's kind: `MSG` for a message's pointer partition, `OWN/CONV` for a conversation in
/// its owner's partition, and so on.
fn kind(pk: &str, sk: &str) -> String {
    let head = |key: &str| key.trim_start_matches('#').split('#').next().unwrap_or_default().to_owned();
    match head(pk).as_str() {
        "OWN" => format!("OWN/{}", head(sk)),
        "MSG" => format!("MSG/{}", head(sk)),
        other => other.to_owned(),
    }
}

impl DynamoStore {
    /// Every item naming `app`, with the attributes of [`PROJECTION`].
    async fn items_of(&self, app: AppId) -> StoreResult<Vec<Item>> {
        self.scan(Scan {
            filter: "contains(PK, :app) OR app_id = :app",
            names: &[],
            values: vec![(":app", s(app.to_string()))],
            projection: Some(PROJECTION),
            fetch: None,
        })
        .await
    }
}

#[async_trait]
impl Inventory for DynamoStore {
    async fn inventory(&self, app: AppId, end_users: Option<&[EndUserId]>) -> StoreResult<Holdings> {
        let opt = |item: &Item, name: &str| Read::new("item", item).opt_s(name);
        // Each item's keys, read once.
        let mut keyed = Vec::new();
        for item in self.items_of(app).await? {
            let (pk, sk) = (opt(&item, "PK")?.unwrap_or_default(), opt(&item, "SK")?.unwrap_or_default());
            keyed.push((pk, sk, item));
        }
        let mut holdings = Holdings::default();
        let mut count = |pk: &str, sk: &str, item: &Item| -> StoreResult<()> {
            holdings.add(&kind(pk, sk), 1);
            if pk.starts_with("FILE#") {
                holdings.files.push(Read::new("file", item).parse("id")?);
            }
            Ok(())
        };
        let Some(users) = end_users else {
            for (pk, sk, item) in &keyed {
                count(pk, sk, item)?;
            }
            return Ok(holdings);
        };
        let users: HashSet<String> = users.iter().map(ToString::to_string).collect();
        let partitions: HashSet<String> = users.iter().map(|u| format!("OWN#{app}#{u}")).collect();
        // Their conversations first: variables name only their conversation.
        let conversations: HashSet<&str> = keyed
            .iter()
            .filter(|(pk, _, _)| partitions.contains(pk))
            .filter_map(|(_, sk, _)| sk.strip_prefix("CONV#"))
            .collect();
        for (pk, sk, item) in &keyed {
            let named = |name: &str| -> StoreResult<bool> { Ok(opt(item, name)?.is_some_and(|v| users.contains(&v))) };
            let in_conversation = opt(item, "conversation_id")?.is_some_and(|c| conversations.contains(c.as_str()))
                || ["CONV#", "VARS#", "CPTR#"]
                    .iter()
                    .any(|prefix| pk.strip_prefix(prefix).is_some_and(|c| conversations.contains(c)));
            // Their rate-limit windows: `RL#…:<app>:<end user>`.
            let limited = pk.starts_with("RL#") && users.iter().any(|u| pk.ends_with(&format!("{app}:{u}")));
            let theirs = partitions.contains(pk)
                || limited
                || named("end_user_id")?
                || named("conversation_end_user_id")?
                || (sk == "#EU" && named("id")?)
                || in_conversation;
            if theirs {
                count(pk, sk, item)?;
            }
        }
        Ok(holdings)
    }
}

#[cfg(test)]
mod tests {
    use super::kind;

    #[test]
    fn kinds_name_the_partition_and_within_an_owner_the_sort_key() {
        assert_eq!(kind("OWN#a#u", "CONV#c"), "OWN/CONV");
        assert_eq!(kind("OWN#a#u", "ACT#H#00000003600"), "OWN/ACT");
        assert_eq!(kind("MSG#m", "#MSG"), "MSG/MSG");
        assert_eq!(kind("MSG#m", "FB#u"), "MSG/FB");
        assert_eq!(kind("STATS#a#03", "H#1"), "STATS");
    }
}
