//! Deep pages on SQLite: how long the first page of a long list takes against its last full
//! page, for a conversation's message history (newest first, `first_id`) and an end user's
//! conversations (every sort, `last_id`).
//!
//! Seeds one conversation with 100,001 messages and one end user with 100,001 conversations
//! (timestamps shared by pairs of rows, so the id tie-break is exercised) in a SQLite file,
//! then times each page through the store's ports: the median of 50 runs after 5 warm-ups.
//! Run with `cargo bench -p colloquy-bench-depth` (release settings).

use std::time::{Duration, Instant};

#[path = "../rows.rs"]
mod rows;

use colloquy_core::domain::{
    AppId, Conversation, ConversationList, ConversationSort, EndUserId, Message, Metadata, Owner,
};
use colloquy_core::ports::{ConversationStore, MessageStore};
use colloquy_embedded::sqlite::SqliteStore;
use rows::{FETCH, ROWS, SORTS, conversation, deep_conversation_page, deep_message_page, message};
use uuid::Uuid;

const WARM_UPS: usize = 5;
const RUNS: usize = 50;

/// The median time of `run` over [`RUNS`] runs, after [`WARM_UPS`] untimed ones.
async fn median<F, Fut>(mut run: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: Future<Output = usize>,
{
    for _ in 0..WARM_UPS {
        assert_eq!(run().await, FETCH, "every timed page is full");
    }
    let mut times = Vec::with_capacity(RUNS);
    for _ in 0..RUNS {
        let start = Instant::now();
        let rows = run().await;
        times.push(start.elapsed());
        assert_eq!(rows, FETCH);
    }
    times.sort();
    times[RUNS / 2]
}

fn report(list: &str, first: Duration, deep: Duration) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| {list} | {:.3} | {:.3} | {:.2} |", ms(first), ms(deep), deep.as_secs_f64() / first.as_secs_f64());
}

#[tokio::main]
async fn main() {
    let path = std::env::temp_dir().join(format!("colloquy-depth-{}.db", Uuid::new_v4()));
    let store = SqliteStore::open(&path).expect("open the store");
    let owner = Owner { app_id: AppId::from_uuid(Uuid::new_v4()), end_user_id: EndUserId::from_uuid(Uuid::new_v4()) };

    let started = Instant::now();
    // Every second conversation is tagged `project=a` (a list of its own, 50,001 long).
    let tagged = Metadata::from_json(&serde_json::json!({"project": "a"})).expect("metadata");
    let conversations: Vec<Conversation> = (0..ROWS)
        .map(|i| {
            let mut c = conversation(owner, i);
            if i % 2 == 0 {
                c.state.metadata = tagged.clone();
            }
            c
        })
        .collect();
    // The history lives in a conversation of another end user, so each list is alone in its index range.
    let other = Owner { end_user_id: EndUserId::from_uuid(Uuid::new_v4()), ..owner };
    let history = conversation(other, 0);
    let messages: Vec<Message> = (0..ROWS).map(|i| message(&history, i)).collect();
    store.import(&[conversations.clone(), vec![history.clone()]].concat(), &messages).await.expect("seed");
    eprintln!("seeded {ROWS} conversations and {ROWS} messages in {:.1} s", started.elapsed().as_secs_f64());

    println!("| list | first page ms | last full page ms | × first page |");
    println!("|---|---:|---:|---:|");

    // Messages, newest first: the deep page's cursor is the row just before the oldest 21.
    let (deep, oldest) = deep_message_page(&messages);
    let page = store.messages_before(history.id, Some(deep), FETCH).await.unwrap();
    assert_eq!(page.last().map(|m| m.id), Some(oldest), "the deep page ends at the oldest message");
    let first = median(|| async { store.messages_before(history.id, None, FETCH).await.unwrap().len() }).await;
    let last = median(|| async { store.messages_before(history.id, Some(deep), FETCH).await.unwrap().len() }).await;
    report("messages (newest first)", first, last);

    for (field, descending, name) in SORTS {
        let sort = ConversationSort { field, descending };
        let (deep, end) = deep_conversation_page(&conversations, sort);
        let page = store.conversations(owner, sort, &ConversationList::Active, Some(deep), FETCH).await.unwrap();
        assert_eq!(page.last().map(|c| c.id), Some(end), "the deep page ends the list");
        let first = median(|| async {
            store.conversations(owner, sort, &ConversationList::Active, None, FETCH).await.unwrap().len()
        })
        .await;
        let last = median(|| async {
            store.conversations(owner, sort, &ConversationList::Active, Some(deep), FETCH).await.unwrap().len()
        })
        .await;
        report(&format!("conversations (`sort_by={name}`)"), first, last);
    }

    // A metadata filter's list: the same seek on `conversation_lists`, joined to each row.
    let list = ConversationList::Metadata { archived: false, key: "project".into(), value: "a".into() };
    let in_list: Vec<Conversation> = conversations.iter().filter(|c| !c.state.metadata.is_empty()).cloned().collect();
    for (field, descending, name) in SORTS {
        let sort = ConversationSort { field, descending };
        let (deep, end) = deep_conversation_page(&in_list, sort);
        let page = store.conversations(owner, sort, &list, Some(deep), FETCH).await.unwrap();
        assert_eq!(page.last().map(|c| c.id), Some(end), "the deep page ends the list");
        let first =
            median(|| async { store.conversations(owner, sort, &list, None, FETCH).await.unwrap().len() }).await;
        let last =
            median(|| async { store.conversations(owner, sort, &list, Some(deep), FETCH).await.unwrap().len() }).await;
        report(&format!("conversations with `metadata[project]=a` (`sort_by={name}`)"), first, last);
    }

    drop(store);
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
}
