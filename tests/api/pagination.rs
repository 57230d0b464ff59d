//! Property: paging through a list returns every item exactly once, in order, even when
//! many items share a timestamp (Dify skips those; we must not).

use std::sync::OnceLock;

use colloquy_core::domain::{Conversation, Timestamp};
use colloquy_tests::*;
use proptest::prelude::*;
use tokio::runtime::Runtime;

fn runtime() -> &'static Runtime {
    static RUNTIME: OnceLock<Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap())
}

fn at(second: u8) -> Timestamp {
    Timestamp::from_micros((T0 + i64::from(second)) * 1_000_000)
}

/// Follows `last_id` until `has_more` is false and returns the ids seen.
async fn page_conversations(app: &TestApp, key: &TestKey, sort: &str, limit: usize) -> Vec<String> {
    let mut seen = Vec::new();
    let mut last: Option<String> = None;
    loop {
        let mut path = format!("/v1/conversations?user=p&limit={limit}&sort_by={sort}");
        if let Some(last) = &last {
            path.push_str(&format!("&last_id={last}"));
        }
        let (status, body) = send(app.get(key, &path)).await;
        assert_eq!(status, 200, "{body}");
        let data = body["data"].as_array().unwrap();
        assert!(data.len() <= limit);
        seen.extend(data.iter().map(|c| c["id"].as_str().unwrap().to_owned()));
        if body["has_more"] != true {
            return seen;
        }
        last = data.last().map(|c| c["id"].as_str().unwrap().to_owned());
        assert!(seen.len() <= 1000, "paging does not terminate");
    }
}

fn expected(conversations: &[Conversation], sort: &str) -> Vec<String> {
    let mut sorted: Vec<&Conversation> = conversations.iter().collect();
    let key = |c: &Conversation| if sort.ends_with("created_at") { c.created_at } else { c.updated_at };
    sorted.sort_by_key(|c| (key(c), c.id));
    if sort.starts_with('-') {
        sorted.reverse();
    }
    sorted.iter().map(|c| c.id.to_string()).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn conversation_pages_cover_everything_once(
        stamps in prop::collection::vec((0u8..4, 0u8..4), 0..30),
        limit in 1usize..7,
    ) {
        runtime().block_on(async {
            let app = spawn_app().await;
            let key = app.chat_app().await;
            let mut conversations = Vec::new();
            for (created, updated) in &stamps {
                let mut c = app.seed_conversation_at(&key, "p", "c", at(*created)).await;
                c.updated_at = at(created + updated);
                app.store.update_conversation(&c).await.unwrap();
                conversations.push(c);
            }
            for sort in ["created_at", "-created_at", "updated_at", "-updated_at"] {
                let seen = page_conversations(&app, &key, sort, limit).await;
                assert_eq!(seen, expected(&conversations, sort), "sort {sort}, limit {limit}");
            }
        });
    }

    #[test]
    fn message_history_pages_cover_everything_once(
        stamps in prop::collection::vec(0u8..4, 0..30),
        limit in 1usize..7,
    ) {
        runtime().block_on(async {
            let app = spawn_app().await;
            let key = app.chat_app().await;
            let conversation = app.seed_conversation(&key, "p", "c").await;
            let mut messages = Vec::new();
            // Sent in time order (each replying to the one before), several in one second.
            let mut stamps = stamps.clone();
            stamps.sort_unstable();
            for second in &stamps {
                messages.push(app.seed_message_at(&conversation, "q", at(*second)).await);
            }
            messages.sort_by_key(|m| (m.created_at, m.id));
            let expected: Vec<String> = messages.iter().map(|m| m.id.to_string()).collect();

            // Pages go backwards in time; each page is ascending.
            let mut seen: Vec<String> = Vec::new();
            let mut first: Option<String> = None;
            loop {
                let mut path = format!("/v1/messages?user=p&conversation_id={}&limit={limit}", conversation.id);
                if let Some(first) = &first {
                    path.push_str(&format!("&first_id={first}"));
                }
                let (status, body) = send(app.get(&key, &path)).await;
                assert_eq!(status, 200);
                let page: Vec<String> = body["data"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
                assert!(page.len() <= limit);
                let mut combined = page.clone();
                combined.extend(seen);
                seen = combined;
                if body["has_more"] != true {
                    break;
                }
                first = page.first().cloned();
            }
            assert_eq!(seen, expected);
        });
    }
}
