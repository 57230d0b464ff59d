//! Apps and their API keys (tables `apps` and `api_keys`).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};

use async_trait::async_trait;
use rusqlite::{OptionalExtension, Row, params_from_iter};

use colloquy_core::domain::{App, AppConfig, AppId, AppMode, Grant, KeyHash, KeyRecord, KeyRole, Timestamp};
use colloquy_core::ports::{AppStore, StoreResult};

use super::codec::{Fields, args, to_json};
use super::{SqliteStore, insert_sql, qualified};

const COLUMNS: &str = "id, name, mode, config, created_at";

fn app_from_row(row: &Row<'_>) -> rusqlite::Result<App> {
    app_from_row_with(row, |_, text| serde_json::from_str(text).map_err(|e| e.to_string()))
}

/// An app, its configuration decoded by `config` (given the app and the stored JSON).
fn app_from_row_with(
    row: &Row<'_>,
    config: impl FnOnce(AppId, &str) -> Result<AppConfig, String>,
) -> rusqlite::Result<App> {
    let f = Fields::of("apps", row);
    let id = f.parse("id")?;
    Ok(App {
        id,
        name: f.get("name")?,
        mode: f.parse_with("mode", AppMode::parse)?,
        config: f.decode_text("config", |text| config(id, text))?,
        created_at: f.time("created_at")?,
    })
}

/// The app behind a key, with the key's role and last use: `?1` the key's hash.
static APP_FOR_KEY_SQL: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {}, api_keys.role AS role, api_keys.last_used_at AS last_used_at, api_keys.shown AS shown
         FROM api_keys JOIN apps ON apps.id = api_keys.app_id WHERE api_keys.key_hash = ?1",
        qualified("apps", COLUMNS)
    )
});

const KEY_COLUMNS: &str = "key_hash, app_id, created_at, role, shown, last_used_at";

fn key_args(app: AppId, key: &KeyRecord) -> super::codec::Args {
    args![key.hash.as_str(), app, key.created_at, key.role.as_str(), key.shown.clone(), key.last_used_at]
}

fn key_from_row(row: &Row<'_>) -> rusqlite::Result<KeyRecord> {
    let f = Fields::of("api_keys", row);
    Ok(KeyRecord {
        hash: KeyHash::from_stored(f.get("key_hash")?),
        role: f.parse_with("role", KeyRole::parse)?,
        // Nullable by design: keys made before keys were listed.
        shown: f.get("shown")?,
        created_at: f.time("created_at")?,
        // Nullable by design: a key never used.
        last_used_at: f.time_opt("last_used_at")?,
    })
}

/// The configurations of the apps that requests were made for, decoded, each beside the JSON
/// it was decoded from. Every request reads its app's row; decoding the configuration (a
/// JSON document of a few hundred bytes to a few kilobytes) cost more than the rest of
/// authentication, so a configuration whose stored JSON is the same text as last time is
/// copied instead. The row is still read on every request: a change (from this process or
/// `colloquy app update` in another) shows at once.
#[derive(Default)]
pub(super) struct Configs {
    decoded: Mutex<HashMap<AppId, (Box<str>, AppConfig)>>,
}

impl Configs {
    /// The most apps remembered; beyond it the memory starts over.
    const CAPACITY: usize = 1024;

    fn decode(&self, app: AppId, text: &str) -> Result<AppConfig, String> {
        let mut decoded = self.decoded.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((seen, config)) = decoded.get(&app)
            && **seen == *text
        {
            return Ok(config.clone());
        }
        let config: AppConfig = serde_json::from_str(text).map_err(|e| e.to_string())?;
        if decoded.len() >= Self::CAPACITY {
            decoded.clear();
        }
        decoded.insert(app, (text.into(), config.clone()));
        Ok(config)
    }
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_app(&self, app: &App, first_key: &KeyRecord) -> StoreResult<()> {
        let app_args = args![app.id, app.name.as_str(), app.mode.as_str(), to_json(&app.config)?, app.created_at];
        let key_args = key_args(app.id, first_key);
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(&insert_sql("apps", COLUMNS), params_from_iter(app_args))?;
            tx.execute(&insert_sql("api_keys", KEY_COLUMNS), params_from_iter(key_args))?;
            tx.commit()
        })
        .await
    }

    async fn update_app(&self, app: &App) -> StoreResult<bool> {
        let sql = "UPDATE apps SET name = ?2, mode = ?3, config = ?4 WHERE id = ?1";
        let values = args![app.id, app.name.as_str(), app.mode.as_str(), to_json(&app.config)?];
        Ok(self.execute(sql.into(), values).await? == 1)
    }

    async fn app(&self, id: AppId) -> StoreResult<Option<App>> {
        self.one(format!("SELECT {COLUMNS} FROM apps WHERE id = ?1"), args![id], app_from_row).await
    }

    async fn apps(&self) -> StoreResult<Vec<App>> {
        self.all(format!("SELECT {COLUMNS} FROM apps ORDER BY created_at, id"), args![], app_from_row).await
    }

    async fn add_key(&self, app: AppId, key: &KeyRecord) -> StoreResult<()> {
        self.execute(insert_sql("api_keys", KEY_COLUMNS), key_args(app, key)).await.map(drop)
    }

    async fn app_for_key(&self, key: &KeyHash) -> StoreResult<Option<Grant>> {
        let configs = self.configs.clone();
        let key = args![key.as_str()];
        self.read_here(move |conn| {
            conn.prepare_cached(&APP_FOR_KEY_SQL)?
                .query_row(params_from_iter(key), |row| {
                    let app = app_from_row_with(row, |app, text| configs.decode(app, text))?;
                    let f = Fields::of("api_keys", row);
                    Ok(Grant {
                        app,
                        role: f.parse_with("role", KeyRole::parse)?,
                        // Nullable by design: a key never used.
                        last_used_at: f.time_opt("last_used_at")?,
                        // Nullable by design: keys made before keys were listed.
                        shown: f.get("shown")?,
                    })
                })
                .optional()
        })
        .await
    }

    async fn touch_key(&self, key: &KeyHash, now: Timestamp) -> StoreResult<()> {
        let stale = KeyRecord::stale_before(now);
        let sql = "UPDATE api_keys SET last_used_at = ?2 WHERE key_hash = ?1 AND (last_used_at IS NULL OR last_used_at <= ?3)";
        self.execute(sql.into(), args![key.as_str(), now, stale]).await.map(drop)
    }

    async fn keys(&self, app: AppId) -> StoreResult<Vec<KeyRecord>> {
        let sql = format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE app_id = ?1 ORDER BY created_at, key_hash");
        self.all(sql, args![app], key_from_row).await
    }

    async fn revoke_key(&self, key: &KeyHash) -> StoreResult<bool> {
        Ok(self.execute("DELETE FROM api_keys WHERE key_hash = ?1".into(), args![key.as_str()]).await? == 1)
    }
}
