"""PyPI dify-client (pinned in tests/compat/run.sh) against a fresh local Colloquy server.

Every method the client has is called and its answer checked; routes the client lacks are
called with plain `requests`, the way the client itself sends (Bearer key, JSON content type).
"""

import json
import os
import subprocess
import unittest
import uuid

import requests
from dify_client import ChatClient, CompletionClient, DifyClient

BASE = os.environ["COMPAT_BASE"]
KEY = os.environ["COMPAT_KEY"]


def client(cls=ChatClient):
    c = cls(KEY)
    c.base_url = BASE
    return c


def call(method, path, **kwargs):
    headers = {"Authorization": f"Bearer {KEY}"}
    if "files" not in kwargs:
        headers["Content-Type"] = "application/json"
    return requests.request(method, BASE + path, headers=headers, **kwargs)


def user():
    return f"py-{uuid.uuid4().hex[:8]}"


def chat(c, who, query, conversation_id=None, files=None):
    response = c.create_chat_message({}, query, who, conversation_id=conversation_id, files=files)
    assert response.status_code == 200, response.text
    return response.json()


def events(response):
    out = []
    for line in response.iter_lines():
        if line.startswith(b"data: "):
            out.append(json.loads(line[len(b"data: "):]))
    return out


class DifyClientMethods(unittest.TestCase):
    def test_get_application_parameters(self):
        body = client(DifyClient).get_application_parameters(user()).json()
        self.assertEqual(body["opening_statement"], "Hello! Ask me anything.")
        self.assertEqual(body["suggested_questions"], ["What can you do?"])
        self.assertTrue(body["speech_to_text"]["enabled"])
        self.assertTrue(body["text_to_speech"]["enabled"])
        self.assertEqual(body["system_parameters"]["image_file_size_limit"], 10)

    def test_file_upload_and_chat_with_the_file(self):
        c, who = client(), user()
        png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
        response = c.file_upload(who, {"file": ("photo.png", png, "image/png")})
        self.assertEqual(response.status_code, 201, response.text)
        file = response.json()
        self.assertEqual((file["name"], file["size"], file["mime_type"]), ("photo.png", len(png), "image/png"))
        files = [{"type": "image", "transfer_method": "local_file", "upload_file_id": file["id"]}]
        answer = chat(c, who, "Describe the photo", files=files)
        history = c.get_conversation_messages(who, answer["conversation_id"]).json()
        attached = history["data"][0]["message_files"]
        self.assertEqual([f["upload_file_id"] for f in attached], [file["id"]])
        preview = call("GET", f"/files/{file['id']}/preview", params={"user": who})
        self.assertEqual(preview.content, png)

    def test_message_feedback(self):
        c, who = client(), user()
        answer = chat(c, who, "Rate me")
        response = c.message_feedback(answer["message_id"], "like", who)
        self.assertEqual(response.json(), {"result": "success"})
        history = c.get_conversation_messages(who, answer["conversation_id"]).json()
        self.assertEqual(history["data"][0]["feedback"], {"rating": "like"})
        self.assertEqual(c.message_feedback(answer["message_id"], None, who).json(), {"result": "success"})
        history = c.get_conversation_messages(who, answer["conversation_id"]).json()
        self.assertIsNone(history["data"][0]["feedback"])


class ChatClientMethods(unittest.TestCase):
    def test_create_chat_message_blocking_and_continued(self):
        c, who = client(), user()
        first = chat(c, who, "What is a good name for a cat?")
        self.assertEqual(first["event"], "message")
        self.assertIn("What is a good name for a cat?", first["answer"])
        second = chat(c, who, "And for a dog?", conversation_id=first["conversation_id"])
        self.assertEqual(second["conversation_id"], first["conversation_id"])
        history = c.get_conversation_messages(who, first["conversation_id"]).json()
        self.assertEqual([m["query"] for m in history["data"]], ["What is a good name for a cat?", "And for a dog?"])

    def test_create_chat_message_streaming(self):
        c, who = client(), user()
        response = c.create_chat_message({}, "Stream this answer", who, response_mode="streaming")
        self.assertEqual(response.headers["content-type"], "text/event-stream")
        received = events(response)
        kinds = [e["event"] for e in received]
        self.assertEqual(kinds[-1], "message_end")
        text = "".join(e["answer"] for e in received if e["event"] == "message")
        self.assertIn("Stream this answer", text)
        self.assertEqual(len({e["message_id"] for e in received}), 1)

    def test_get_conversations_paging_and_sdk_quirks(self):
        c, who = client(), user()
        ids = [chat(c, who, f"question {i}")["conversation_id"] for i in range(3)]
        page = c.get_conversations(who, limit=2).json()
        self.assertEqual((len(page["data"]), page["has_more"], page["limit"]), (2, True, 2))
        self.assertEqual([x["id"] for x in page["data"]], ids[::-1][:2])
        rest = c.get_conversations(who, last_id=page["data"][-1]["id"], limit=2).json()
        self.assertEqual(([x["id"] for x in rest["data"]], rest["has_more"]), ([ids[0]], False))
        # `pinned=True` is sent as "True": a real filter here (Dify ignores it). Pinned with
        # Colloquy's PATCH, one conversation is listed; unpinned ones with pinned=False.
        self.assertEqual(c.get_conversations(who, pinned=True).json()["data"], [])
        patched = call("PATCH", f"/conversations/{ids[1]}", json={"user": who, "pinned": True})
        self.assertEqual((patched.status_code, patched.json()["pinned"]), (200, True))
        self.assertEqual([x["id"] for x in c.get_conversations(who, pinned=True).json()["data"]], [ids[1]])
        self.assertEqual(len(c.get_conversations(who, pinned=False).json()["data"]), 2)
        # Other Dify clients send empty values for unset parameters.
        empty = call("GET", "/conversations", params={"user": who, "last_id": "", "limit": "", "pinned": ""})
        self.assertEqual((empty.status_code, len(empty.json()["data"])), (200, 3))

    def test_get_conversation_messages_pages_back_with_first_id(self):
        c, who = client(), user()
        conversation = chat(c, who, "m0")["conversation_id"]
        for i in range(1, 4):
            chat(c, who, f"m{i}", conversation_id=conversation)
        newest = c.get_conversation_messages(who, conversation, limit=2).json()
        self.assertEqual(([m["query"] for m in newest["data"]], newest["has_more"]), (["m2", "m3"], True))
        older = c.get_conversation_messages(who, conversation, first_id=newest["data"][0]["id"], limit=2).json()
        self.assertEqual(([m["query"] for m in older["data"]], older["has_more"]), (["m0", "m1"], False))

    def test_rename_conversation(self):
        c, who = client(), user()
        conversation = chat(c, who, "Rename me")["conversation_id"]
        renamed = c.rename_conversation(conversation, "Trip to Lisbon", who).json()
        self.assertEqual((renamed["id"], renamed["name"]), (conversation, "Trip to Lisbon"))
        listed = c.get_conversations(who).json()["data"]
        self.assertEqual(listed[0]["name"], "Trip to Lisbon")
        other = c.rename_conversation(conversation, "Hijacked", user())
        self.assertEqual((other.status_code, other.json()["code"]), (404, "not_found"))


class CompletionClientMethods(unittest.TestCase):
    def test_completion_messages_are_not_served(self):
        # Completion apps are outside this service (chat apps only): a clear 404 in Dify's shape.
        response = client(CompletionClient).create_completion_message({}, "blocking", user())
        self.assertEqual(response.status_code, 404)
        self.assertEqual(set(response.json()), {"code", "message", "status"})


class RoutesTheClientLacks(unittest.TestCase):
    """Plain HTTP, sent the way dify-client sends its own requests."""

    def test_delete_conversation(self):
        c, who = client(), user()
        conversation = chat(c, who, "Delete me")["conversation_id"]
        response = call("DELETE", f"/conversations/{conversation}", json={"user": who})
        self.assertEqual((response.status_code, response.content), (204, b""))
        self.assertNotIn("content-type", response.headers)
        self.assertEqual(c.get_conversations(who).json()["data"], [])

    def test_suggested_questions(self):
        c, who = client(), user()
        answer = chat(c, who, "Tell me about Rust")
        body = call("GET", f"/messages/{answer['message_id']}/suggested", params={"user": who}).json()
        self.assertEqual(body["result"], "success")
        self.assertEqual(len(body["data"]), 3)

    def test_stop_a_streaming_answer(self):
        c, who = client(), user()
        response = c.create_chat_message({}, "word " * 200, who, response_mode="streaming")
        lines = response.iter_lines()
        task = None
        for line in lines:
            if line.startswith(b"data: "):
                task = json.loads(line[6:])["task_id"]
                break
        stopped = call("POST", f"/chat-messages/{task}/stop", json={"user": who})
        self.assertEqual(stopped.json(), {"result": "success"})
        rest = [json.loads(l[6:]) for l in lines if l.startswith(b"data: ")]
        self.assertEqual(rest[-1]["event"], "message_end")

    def test_conversation_variables(self):
        c, who = client(), user()
        conversation = chat(c, who, "Remember things")["conversation_id"]
        listed = call("GET", f"/conversations/{conversation}/variables", params={"user": who}).json()
        self.assertEqual([(v["name"], v["value_type"]) for v in listed["data"]], [("memory", "object")])
        variable = listed["data"][0]["id"]
        # PATCH, as one dify-client release sends it, and PUT.
        for method in ("PATCH", "PUT"):
            body = {"value": {"city": "Porto", "via": method}, "user": who}
            updated = call(method, f"/conversations/{conversation}/variables/{variable}", json=body).json()
            self.assertEqual(updated["value"], f"{{'city': 'Porto', 'via': '{method}'}}")

    def test_app_feedbacks(self):
        c, who = client(), user()
        answer = chat(c, who, "Feedback for the app list")
        c.message_feedback(answer["message_id"], "dislike", who)
        body = call("GET", "/app/feedbacks", params={"limit": 100}).json()
        mine = [f for f in body["data"] if f["message_id"] == answer["message_id"]]
        self.assertEqual([f["rating"] for f in mine], ["dislike"])

    def test_info_meta_site(self):
        self.assertEqual(call("GET", "/info").json()["tags"], ["compat"])
        self.assertEqual(call("GET", "/meta", params={"user": user()}).json(), {"tool_icons": {}})
        self.assertEqual(call("GET", "/site").json()["default_language"], "en-US")

    def test_annotations_and_annotation_reply(self):
        created = call("POST", "/apps/annotations", json={"question": "Opening hours?", "answer": "9 to 5"})
        self.assertEqual(created.status_code, 200)  # Dify 1.x; Dify's newest code says 201
        annotation = created.json()["id"]
        listed = call("GET", "/apps/annotations", params={"keyword": "opening"}).json()
        self.assertIn(annotation, [a["id"] for a in listed["data"]])
        updated = call("PUT", f"/apps/annotations/{annotation}", json={"question": "Opening hours?", "answer": "8 to 6"})
        self.assertEqual(updated.json()["answer"], "8 to 6")
        settings = {"score_threshold": 0.9, "embedding_provider_name": "echo", "embedding_model_name": "lexical"}
        job = call("POST", "/apps/annotation-reply/enable", json=settings).json()
        status = call("GET", f"/apps/annotation-reply/enable/status/{job['job_id']}").json()
        self.assertEqual(status["job_status"], "completed")
        answer = chat(client(), user(), "Opening hours?")
        self.assertEqual(answer["answer"], "8 to 6")
        call("POST", "/apps/annotation-reply/disable", json=settings)
        self.assertEqual(call("DELETE", f"/apps/annotations/{annotation}").status_code, 204)

    def test_text_to_audio_and_audio_to_text(self):
        c, who = client(), user()
        answer = chat(c, who, "The weather today is sunny this morning.")
        audio = call("POST", "/text-to-audio", json={"message_id": answer["message_id"], "user": who, "streaming": False})
        self.assertEqual(audio.status_code, 200, audio.text[:200])
        self.assertEqual(audio.headers["content-type"], "audio/mpeg")
        self.assertTrue(audio.content[:3] == b"ID3" or audio.content[0] == 0xFF, audio.content[:4])
        wav = subprocess.run(
            ["espeak-ng", "-v", "en-us", "--stdout", "The weather today is sunny this morning."],
            check=True, capture_output=True,
        ).stdout
        heard = call("POST", "/audio-to-text", data={"user": who}, files={"file": ("speech.wav", wav, "audio/wav")})
        self.assertEqual(heard.status_code, 200, heard.text)
        self.assertIn("morning", heard.json()["text"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
