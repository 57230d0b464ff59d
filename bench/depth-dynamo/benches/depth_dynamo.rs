//! Deep pages on DynamoDB Local: how long the first page of a long list takes against its last
//! full page, for a conversation's message history (newest first, `first_id`) and an end
//! user's conversations (every sort, `last_id`) — the DynamoDB half of `bench/depth`.
//!
//! Creates a fresh table as the service defines it, seeds one conversation with 100,001
//! messages and one end user with 100,001 conversations (timestamps shared by pairs of rows,
//! so the id tie-break is exercised) through the store's bulk imports, then times each page
//! through the store's ports with the service's own DynamoDB client: first and deep page in
//! turn, the median of each over 101 runs after 20 warm-ups (DynamoDB Local runs on the JVM,
//! whose compiler needs the warm-ups). Deletes the table at the end.
//!
//! Only against an emulator: `AWS_ENDPOINT_URL_DYNAMODB` must name a loopback address.
//! `bench/depth-dynamo.sh` starts DynamoDB Local and runs it (release settings).

use std::time::{Duration, Instant};

#[path = "../../depth/rows.rs"]
mod rows;

use colloquy_aws::dynamo::DynamoStore;
use colloquy_core::domain::{AppId, Conversation, ConversationList, ConversationSort, EndUserId, Message, Owner};
use colloquy_core::ports::{ConversationStore, MessageStore};
use rows::{FETCH, ROWS, SORTS, conversation, deep_conversation_page, deep_message_page, message};
use uuid::Uuid;

const WARM_UPS: usize = 20;
const RUNS: usize = 101;

/// The medians of `first` and `deep` over [`RUNS`] runs each, run in turn (so a slow spell of
/// the shared machine hits both alike), after [`WARM_UPS`] untimed runs of each.
async fn medians<F, D, FutF, FutD>(mut first: F, mut deep: D) -> (Duration, Duration)
where
    F: FnMut() -> FutF,
    D: FnMut() -> FutD,
    FutF: Future<Output = usize>,
    FutD: Future<Output = usize>,
{
    for _ in 0..WARM_UPS {
        assert_eq!(first().await, FETCH, "every timed page is full");
        assert_eq!(deep().await, FETCH, "every timed page is full");
    }
    let (mut firsts, mut deeps) = (Vec::with_capacity(RUNS), Vec::with_capacity(RUNS));
    for _ in 0..RUNS {
        let start = Instant::now();
        let rows = first().await;
        firsts.push(start.elapsed());
        assert_eq!(rows, FETCH);
        let start = Instant::now();
        let rows = deep().await;
        deeps.push(start.elapsed());
        assert_eq!(rows, FETCH);
    }
    firsts.sort();
    deeps.sort();
    (firsts[RUNS / 2], deeps[RUNS / 2])
}

fn report(list: &str, first: Duration, deep: Duration) {
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!("| {list} | {:.2} | {:.2} | {:.2} |", ms(first), ms(deep), deep.as_secs_f64() / first.as_secs_f64());
}

/// The emulator's endpoint; refuses anything but a loopback address, so that the bench never
/// writes its 300,000 items to a real table.
fn emulator_endpoint() -> String {
    let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB").unwrap_or_default();
    let authority = endpoint.split("://").nth(1).unwrap_or("").split('/').next().unwrap_or("");
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if !matches!(host, "127.0.0.1" | "localhost" | "::1") {
        eprintln!(
            "AWS_ENDPOINT_URL_DYNAMODB must name DynamoDB Local on this machine (got {endpoint:?}); run bench/depth-dynamo.sh"
        );
        std::process::exit(2);
    }
    endpoint
}

#[tokio::main]
async fn main() {
    let endpoint = emulator_endpoint();
    let config = aws_config::defaults(aws_config::BehaviorVersion::latest()).load().await;
    let client = colloquy_aws::aws_clients::dynamodb(&config);
    let table = format!("colloquy-depth-{}", Uuid::new_v4().simple());
    let store = DynamoStore::new(client.clone(), table.clone());
    assert!(store.create_table().await.expect("create the table"), "a fresh table");
    eprintln!("table {table} on {endpoint}");

    let owner = Owner { app_id: AppId::from_uuid(Uuid::new_v4()), end_user_id: EndUserId::from_uuid(Uuid::new_v4()) };
    let started = Instant::now();
    let conversations: Vec<Conversation> = (0..ROWS).map(|i| conversation(owner, i)).collect();
    // The history belongs to another end user, so each list is alone in its partition.
    let other = Owner { end_user_id: EndUserId::from_uuid(Uuid::new_v4()), ..owner };
    let history = conversation(other, 0);
    let messages: Vec<Message> = (0..ROWS).map(|i| message(&history, i)).collect();
    store.import_conversations(&conversations).await.expect("seed the conversations");
    store.import_conversations(std::slice::from_ref(&history)).await.expect("seed the history's conversation");
    store.import_messages(&messages).await.expect("seed the messages");
    eprintln!("seeded {ROWS} conversations and {ROWS} messages in {:.1} s", started.elapsed().as_secs_f64());

    println!("| list | first page ms | last full page ms | × first page |");
    println!("|---|---:|---:|---:|");

    // Messages, newest first: the deep page's cursor is the row just before the oldest 21.
    let (deep, oldest) = deep_message_page(&messages);
    let page = store.messages_before(history.id, Some(deep), FETCH).await.unwrap();
    assert_eq!(page.last().map(|m| m.id), Some(oldest), "the deep page ends at the oldest message");
    let (first, last) = medians(
        || async { store.messages_before(history.id, None, FETCH).await.unwrap().len() },
        || async { store.messages_before(history.id, Some(deep), FETCH).await.unwrap().len() },
    )
    .await;
    report("messages (newest first, `first_id`)", first, last);

    for (field, descending, name) in SORTS {
        let sort = ConversationSort { field, descending };
        let (deep, end) = deep_conversation_page(&conversations, sort);
        let page = store.conversations(owner, sort, &ConversationList::Active, Some(deep), FETCH).await.unwrap();
        assert_eq!(page.last().map(|c| c.id), Some(end), "the deep page ends the list");
        let (first, last) = medians(
            || async { store.conversations(owner, sort, &ConversationList::Active, None, FETCH).await.unwrap().len() },
            || async {
                store.conversations(owner, sort, &ConversationList::Active, Some(deep), FETCH).await.unwrap().len()
            },
        )
        .await;
        report(&format!("conversations (`sort_by={name}`, `last_id`)"), first, last);
    }

    client.delete_table().table_name(&table).send().await.expect("delete the table");
}
