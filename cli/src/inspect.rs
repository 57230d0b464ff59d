//! `colloquy inspect`: what the store and the blob store hold of an app or of one end user.

use colloquy_core::domain::{AppId, EndUserId, UploadFile, UserRef};
use colloquy_core::ports::{BlobStore, Holdings, Store};

/// Counts what `app` (or its end user `user`) has, and prints it: one `kind count` line each
/// (JSON with `json`), blobs last, then the total.
pub async fn run(
    store: &dyn Store,
    blobs: &dyn BlobStore,
    app: AppId,
    user: Option<&str>,
    json: bool,
) -> Result<(), String> {
    store.app(app).await.map_err(|e| e.to_string())?.ok_or_else(|| format!("no app {app}"))?;
    let holdings = match user {
        Some(raw) => {
            let user = UserRef::parse(raw).map_err(|e| e.to_string())?;
            // The id the user string derives, and the one stored for a user first seen before.
            let mut ids = vec![EndUserId::derived(app, &user)];
            if let Some(stored) = store.find_end_user(app, &user).await.map_err(|e| e.to_string())?
                && !ids.contains(&stored.id)
            {
                ids.push(stored.id);
            }
            let mut holdings = store.inventory(app, Some(&ids)).await.map_err(|e| e.to_string())?;
            let mut stored = 0;
            for file in &holdings.files {
                stored += blobs.count_blobs(&UploadFile::key_for(app, *file)).await.map_err(|e| e.to_string())?;
            }
            holdings.add("blobs", stored);
            holdings
        }
        None => {
            let mut holdings = store.inventory(app, None).await.map_err(|e| e.to_string())?;
            for prefix in [format!("files/{app}/"), format!("exports/{app}/")] {
                let count = blobs.count_blobs(&prefix).await.map_err(|e| e.to_string())?;
                holdings.add(&format!("blobs {prefix}"), count);
            }
            holdings
        }
    };
    print(&holdings, json);
    Ok(())
}

fn print(holdings: &Holdings, json: bool) {
    if json {
        let counts: serde_json::Map<String, serde_json::Value> =
            holdings.counts.iter().map(|(kind, count)| (kind.clone(), (*count).into())).collect();
        println!("{}", serde_json::json!({"counts": counts, "total": holdings.total()}));
        return;
    }
    for (kind, count) in &holdings.counts {
        println!("{kind:<32} {count}");
    }
    println!("{:<32} {}", "total", holdings.total());
}
