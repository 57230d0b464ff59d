//! Apps and their API keys (tables `apps` and `api_keys`).

use async_trait::async_trait;
use rusqlite::{Row, params_from_iter};

use colloquy_core::domain::{App, AppId, AppMode, KeyHash, Timestamp};
use colloquy_core::ports::{AppStore, StoreResult};

use super::codec::{Fields, args, to_json};
use super::{SqliteStore, insert_sql};

const COLUMNS: &str = "id, name, mode, config, created_at";

fn app_from_row(row: &Row<'_>) -> rusqlite::Result<App> {
    let f = Fields::of("apps", row);
    Ok(App {
        id: f.parse("id")?,
        name: f.get("name")?,
        mode: f.parse_with("mode", AppMode::parse)?,
        config: f.json("config")?,
        created_at: f.time("created_at")?,
    })
}

#[async_trait]
impl AppStore for SqliteStore {
    async fn create_app(&self, app: &App, first_key: &KeyHash) -> StoreResult<()> {
        let app_args = args![app.id, app.name.as_str(), app.mode.as_str(), to_json(&app.config)?, app.created_at];
        let key_args = args![first_key.as_str(), app.id, app.created_at];
        self.write(move |conn| {
            let tx = conn.transaction()?;
            tx.execute(&insert_sql("apps", COLUMNS), params_from_iter(app_args))?;
            tx.execute(
                "INSERT INTO api_keys (key_hash, app_id, created_at) VALUES (?1, ?2, ?3)",
                params_from_iter(key_args),
            )?;
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

    async fn add_key(&self, app: AppId, key: &KeyHash, now: Timestamp) -> StoreResult<()> {
        let sql = "INSERT INTO api_keys (key_hash, app_id, created_at) VALUES (?1, ?2, ?3)";
        self.execute(sql.into(), args![key.as_str(), app, now]).await.map(drop)
    }

    async fn app_for_key(&self, key: &KeyHash) -> StoreResult<Option<App>> {
        let columns: Vec<String> = COLUMNS.split(", ").map(|c| format!("apps.{c} AS {c}")).collect();
        let sql = format!(
            "SELECT {} FROM api_keys JOIN apps ON apps.id = api_keys.app_id WHERE api_keys.key_hash = ?1",
            columns.join(", ")
        );
        self.one(sql, args![key.as_str()], app_from_row).await
    }

    async fn revoke_key(&self, key: &KeyHash) -> StoreResult<bool> {
        Ok(self.execute("DELETE FROM api_keys WHERE key_hash = ?1".into(), args![key.as_str()]).await? == 1)
    }
}
