//! App and key management: what `colloquy app ...` and `colloquy key ...` do.

use crate::domain::{
    ApiKey, App, AppConfig, AppId, AppMode, AuditAction, AuditEntry, AuditId, Invalid, KeyRecord, KeyRole, Timestamp,
};
use crate::ports::{AppStore, Clock, IdGenerator, Store, StoreError};

/// A management failure: bad operator input or a storage problem.
#[derive(Debug, thiserror::Error)]
pub enum AdminError {
    #[error(transparent)]
    Invalid(#[from] Invalid),
    #[error("no app with id {0}")]
    UnknownApp(AppId),
    #[error("no such key")]
    UnknownKey,
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Creates an app and its first key; the key is returned once and stored only as a hash.
pub async fn create_app(
    store: &dyn AppStore,
    clock: &dyn Clock,
    ids: &dyn IdGenerator,
    name: &str,
    mode: AppMode,
    config: AppConfig,
) -> Result<(App, ApiKey), AdminError> {
    let app = App::new(AppId::from_uuid(ids.new_id()), name, mode, config, clock.now())?;
    let key = ApiKey::generate(KeyRole::App);
    store.create_app(&app, &key.record(KeyRole::App, app.created_at)).await?;
    Ok((app, key))
}

/// Replaces an app's configuration.
pub async fn update_config(store: &dyn AppStore, app_id: AppId, config: AppConfig) -> Result<App, AdminError> {
    let current = store.app(app_id).await?.ok_or(AdminError::UnknownApp(app_id))?;
    let app = App::new(app_id, &current.name, current.mode, config, current.created_at)?;
    if !store.update_app(&app).await? {
        return Err(AdminError::UnknownApp(app_id));
    }
    Ok(app)
}

/// Adds a key of `role` to an app; the key is returned once and stored only as a hash.
/// Recorded in the app's audit log.
pub async fn create_key(
    store: &dyn Store,
    clock: &dyn Clock,
    ids: &dyn IdGenerator,
    app_id: AppId,
    role: KeyRole,
) -> Result<ApiKey, AdminError> {
    store.app(app_id).await?.ok_or(AdminError::UnknownApp(app_id))?;
    let key = ApiKey::generate(role);
    let record = key.record(role, clock.now());
    store.add_key(app_id, &record).await?;
    let detail = format!("role={}", role.as_str());
    cli_audit(store, ids, app_id, clock.now(), AuditAction::CreateKey, record.shown, detail).await?;
    Ok(key)
}

/// Records a key command in the app's audit log (actor `cli`).
async fn cli_audit(
    store: &dyn Store,
    ids: &dyn IdGenerator,
    app_id: AppId,
    at: Timestamp,
    action: AuditAction,
    target: Option<String>,
    detail: String,
) -> Result<(), AdminError> {
    let id = AuditId::from_uuid(ids.new_id());
    let entry = AuditEntry::new(id, (app_id, at), "cli".into(), action, target, Some(&detail));
    Ok(store.record(&entry).await?)
}

/// An app's keys as stored: role, the first characters, created and last used; never a key.
pub async fn list_keys(store: &dyn AppStore, app_id: AppId) -> Result<Vec<KeyRecord>, AdminError> {
    store.app(app_id).await?.ok_or(AdminError::UnknownApp(app_id))?;
    Ok(store.keys(app_id).await?)
}

/// Revokes a key; requests with it get 401 from then on. Recorded in its app's audit log.
pub async fn revoke_key(
    store: &dyn Store,
    clock: &dyn Clock,
    ids: &dyn IdGenerator,
    raw: &str,
) -> Result<(), AdminError> {
    let key = ApiKey::parse(raw)?;
    let grant = store.app_for_key(&key.hash()).await?;
    if !store.revoke_key(&key.hash()).await? {
        return Err(AdminError::UnknownKey);
    }
    if let Some(grant) = grant {
        let detail = format!("role={}", grant.role.as_str());
        cli_audit(store, ids, grant.app.id, clock.now(), AuditAction::RevokeKey, grant.shown, detail).await?;
    }
    Ok(())
}
