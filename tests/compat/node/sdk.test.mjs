// npm dify-client (pinned in package.json) against a fresh local Colloquy server.
// Every method the client has is called and its answer checked.
import { test } from "node:test";
import assert from "node:assert/strict";
import { ChatClient, CompletionClient, DifyClient } from "dify-client";

const BASE = process.env.COMPAT_BASE;
const KEY = process.env.COMPAT_KEY;
const user = () => `js-${Math.random().toString(16).slice(2, 10)}`;
const chat = new ChatClient(KEY, BASE);

async function ask(who, query, conversationId = null, files = null) {
  const response = await chat.createChatMessage({}, query, who, false, conversationId, files);
  assert.equal(response.status, 200);
  return response.data;
}

/** The `data:` events of a streamed answer. */
async function events(stream) {
  let text = "";
  for await (const chunk of stream) text += chunk.toString();
  return text
    .split("\n")
    .filter((line) => line.startsWith("data: "))
    .map((line) => JSON.parse(line.slice(6)));
}

test("getApplicationParameters", async () => {
  const { data } = await new DifyClient(KEY, BASE).getApplicationParameters(user());
  assert.equal(data.opening_statement, "Hello! Ask me anything.");
  assert.equal(data.text_to_speech.enabled, true);
  assert.equal(data.system_parameters.file_size_limit, 15);
});

test("fileUpload, then chat with the file", async () => {
  const who = user();
  const form = new FormData();
  const bytes = new Uint8Array([0x89, 0x50, 0x4e, 0x47, 1, 2, 3, 4]);
  form.append("file", new Blob([bytes], { type: "image/png" }), "pixel.png");
  form.append("user", who);
  const uploaded = await chat.fileUpload(form);
  assert.equal(uploaded.status, 201);
  assert.equal(uploaded.data.name, "pixel.png");
  assert.equal(uploaded.data.size, 8);
  const files = [{ type: "image", transfer_method: "local_file", upload_file_id: uploaded.data.id }];
  const answer = await ask(who, "What is in the picture?", null, files);
  const history = await chat.getConversationMessages(who, answer.conversation_id);
  assert.deepEqual(history.data.data[0].message_files.map((f) => f.upload_file_id), [uploaded.data.id]);
});

test("createChatMessage blocking, continued, and streaming", async () => {
  const who = user();
  const first = await ask(who, "Hello from Node");
  assert.equal(first.event, "message");
  assert.match(first.answer, /Hello from Node/);
  const second = await ask(who, "Again", first.conversation_id);
  assert.equal(second.conversation_id, first.conversation_id);

  const streamed = await chat.createChatMessage({}, "Stream from Node", who, true, first.conversation_id);
  assert.equal(streamed.headers["content-type"], "text/event-stream");
  const received = await events(streamed.data);
  assert.equal(received.at(-1).event, "message_end");
  const text = received.filter((e) => e.event === "message").map((e) => e.answer).join("");
  assert.match(text, /Stream from Node/);
});

test("messageFeedback", async () => {
  const who = user();
  const answer = await ask(who, "Rate this");
  const liked = await chat.messageFeedback(answer.message_id, "like", who);
  assert.deepEqual(liked.data, { result: "success" });
  const history = await chat.getConversationMessages(who, answer.conversation_id);
  assert.deepEqual(history.data.data[0].feedback, { rating: "like" });
});

test("getConversationMessages pages back with first_id", async () => {
  const who = user();
  const { conversation_id } = await ask(who, "n0");
  for (const q of ["n1", "n2"]) await ask(who, q, conversation_id);
  const newest = (await chat.getConversationMessages(who, conversation_id, null, 2)).data;
  assert.deepEqual(newest.data.map((m) => m.query), ["n1", "n2"]);
  assert.equal(newest.has_more, true);
  const older = (await chat.getConversationMessages(who, conversation_id, newest.data[0].id, 2)).data;
  assert.deepEqual(older.data.map((m) => m.query), ["n0"]);
  assert.equal(older.has_more, false);
});

test("getConversations pages with its first_id parameter", async () => {
  const who = user();
  const ids = [];
  for (const q of ["c0", "c1", "c2"]) ids.push((await ask(who, q)).conversation_id);
  const first = (await chat.getConversations(who, null, 2)).data;
  assert.deepEqual(first.data.map((c) => c.id), [ids[2], ids[1]]);
  assert.equal(first.has_more, true);
  // dify-client 2.x names its cursor `first_id`; we read it as `last_id`.
  const rest = (await chat.getConversations(who, first.data[1].id, 2)).data;
  assert.deepEqual(rest.data.map((c) => c.id), [ids[0]]);
  // `pinned` is a real filter here (Dify ignores it): nothing pinned yet, then one.
  assert.equal((await chat.getConversations(who, null, null, true)).data.data.length, 0);
  const pin = await fetch(`${BASE}/conversations/${ids[0]}`, {
    method: "PATCH",
    headers: { Authorization: `Bearer ${KEY}`, "Content-Type": "application/json" },
    body: JSON.stringify({ user: who, pinned: true }),
  });
  assert.equal(pin.status, 200);
  assert.deepEqual((await chat.getConversations(who, null, null, true)).data.data.map((c) => c.id), [ids[0]]);
  assert.equal((await chat.getConversations(who, null, null, false)).data.data.length, 2);
});

test("renameConversation by hand and by the model", async () => {
  const who = user();
  const { conversation_id } = await ask(who, "Plan a weekend in Porto");
  const manual = await chat.renameConversation(conversation_id, "Porto weekend", who, false);
  assert.equal(manual.data.name, "Porto weekend");
  const generated = await chat.renameConversation(conversation_id, "", who, true);
  assert.equal(generated.status, 200);
  assert.notEqual(generated.data.name, "");
  assert.notEqual(generated.data.name, "Porto weekend");
});

test("deleteConversation answers 204 that axios can read", async () => {
  const who = user();
  const { conversation_id } = await ask(who, "Delete me");
  const deleted = await chat.deleteConversation(conversation_id, who);
  assert.equal(deleted.status, 204);
  assert.equal(deleted.headers["content-type"], undefined);
  assert.deepEqual((await chat.getConversations(who)).data.data, []);
  await assert.rejects(chat.deleteConversation(conversation_id, who), (error) => {
    assert.equal(error.response.status, 404);
    assert.equal(error.response.data.code, "not_found");
    return true;
  });
});

test("completion and workflow routes are not served, in Dify's error shape", async () => {
  const completion = new CompletionClient(KEY, BASE);
  for (const call of [() => completion.createCompletionMessage({}, user()), () => completion.runWorkflow({}, user())]) {
    await assert.rejects(call(), (error) => {
      assert.equal(error.response.status, 404);
      assert.deepEqual(Object.keys(error.response.data).sort(), ["code", "message", "status"]);
      return true;
    });
  }
});
