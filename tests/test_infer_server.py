"""`ocrsft infer --backend vllm-server` against a loopback OpenAI-compatible mock.

The requests come from the real `paddleocr` PaddleOCRVL pipeline and its paddlex
GenAI client (openai's AsyncOpenAI); only the server is fake. It answers each
chat completion with the size of the image it decoded, so a right answer proves
the image arrived, and it records every request it got.
"""
from __future__ import annotations

import base64
import io
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from inference.predict import predict_file
from samples.errors import UserError
from samples.sample import make_sample

IMAGES = ("word_1", "word_23", "word_433", "word_912")  # real crops, widths 89, 65, 109, 58


class MockServer:
    """`/v1/models` and `/v1/chat/completions` on 127.0.0.1, one thread per request."""

    def __init__(self, fail_width: int | None = None, die_after: int | None = None,
                 delay: float = 0.0):
        self.fail_width, self.die_after, self.delay = fail_width, die_after, delay
        self.requests: list[dict] = []
        self.lock = threading.Lock()
        self.in_flight = self.most_in_flight = 0
        mock = self

        class Handler(BaseHTTPRequestHandler):
            timeout = 30  # a stuck client cannot hold a thread for long

            def log_message(self, *args):
                pass

            def do_GET(self):
                mock.reply(self, 200, {"object": "list", "data": [
                    {"id": "mock", "object": "model", "created": 0, "owned_by": "test"}]})

            def do_POST(self):
                size = int(self.headers.get("Content-Length", 0))
                assert size < 50_000_000
                mock.chat(self, json.loads(self.rfile.read(size)))

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @staticmethod
    def reply(handler, code: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        handler.send_response(code)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def chat(self, handler, req: dict) -> None:
        content = req["messages"][0]["content"]
        url = next(c["image_url"]["url"] for c in content if c["type"] == "image_url")
        text = next(c["text"] for c in content if c["type"] == "text")
        image = Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1])))
        with self.lock:
            self.requests.append({"url": url[:23], "text": text, "size": image.size,
                                  "model": req["model"], "temperature": req.get("temperature")})
            n = len(self.requests)
            self.in_flight += 1
            self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            time.sleep(self.delay)  # lets concurrent requests overlap
            if self.die_after is not None and n > self.die_after:
                threading.Thread(target=self.close, daemon=True).start()
                handler.close_connection = True  # drop it unanswered, then stop listening
                return
            if image.size[0] == self.fail_width:
                return self.reply(handler, 500, {"error": {"message": "mock failure"}})
            self.reply(handler, 200, {
                "id": f"c{n}", "object": "chat.completion", "created": 0, "model": req["model"],
                "choices": [{"index": 0, "finish_reason": "stop", "message": {
                    "role": "assistant", "content": answer(image.size)}}]})
        finally:
            with self.lock:
                self.in_flight -= 1

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def answer(size: tuple[int, int]) -> str:
    return f"W{size[0]}H{size[1]}"


@pytest.fixture
def mock_server(request):
    server = MockServer(**getattr(request, "param", {}))
    yield server
    server.close()


@pytest.fixture(scope="module")
def data(shared_data, tmp_path_factory):
    """Four real crops as OCR samples and the first again as a table sample."""
    root = shared_data / "paddleocr_rec" / "train"
    samples = [make_sample([str(root / f"{n}.png")], [("OCR:", n)]) for n in IMAGES]
    samples.append(make_sample([str(root / f"{IMAGES[0]}.png")], [("Table Recognition:", "t")]))
    path = tmp_path_factory.mktemp("server") / "val.jsonl"
    path.write_text("".join(json.dumps(s) + "\n" for s in samples))
    return path


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def sizes(shared_data):
    root = shared_data / "paddleocr_rec" / "train"
    return [Image.open(root / f"{n}.png").size for n in IMAGES]


def serve(mock_server, data, shared_data, out):
    return predict_file(None, data, out, backend="vllm-server", server_url=mock_server.url,
                        concurrency=4, max_new_tokens=16, image_root=shared_data, progress=False)


@pytest.mark.slow
@pytest.mark.parametrize("mock_server", [{"delay": 0.3}], indirect=True)
def test_every_sample_is_one_request_and_one_row(mock_server, data, shared_data, tmp_path):
    out = tmp_path / "pred.jsonl"
    counts = serve(mock_server, data, shared_data, out)
    assert counts == {"predicted": 5, "errors": 0, "skipped": 0}
    got = rows(out)
    expected = [answer(s) for s in sizes(shared_data)]
    assert [r["prediction"] for r in got] == expected + [expected[0]]
    assert [r["task"] for r in got] == ["ocr"] * 4 + ["table"]
    reqs = mock_server.requests
    assert len(reqs) == 5
    assert all(r["url"] == "data:image/jpeg;base64," and r["temperature"] == 0 for r in reqs)
    assert sorted(r["text"] for r in reqs) == ["OCR:"] * 4 + ["Table Recognition:"]
    assert sorted(r["size"] for r in reqs) == sorted(sizes(shared_data) + sizes(shared_data)[:1])
    assert mock_server.most_in_flight > 1  # --concurrency 4: the OCR samples went out together


@pytest.mark.slow
@pytest.mark.parametrize("mock_server", [{"fail_width": 65}], indirect=True)
def test_a_server_error_becomes_that_samples_row(mock_server, data, shared_data, tmp_path):
    out = tmp_path / "pred.jsonl"
    counts = serve(mock_server, data, shared_data, out)
    assert counts == {"predicted": 4, "errors": 1, "skipped": 0}
    got = rows(out)
    assert len(got) == 5 and "500" in got[1]["error"] and got[1]["prediction"] == ""
    assert [r["prediction"] for r in got[2:4]] == [answer(s) for s in sizes(shared_data)[2:]]


@pytest.mark.slow
@pytest.mark.parametrize("mock_server", [{"die_after": 2}], indirect=True)
def test_a_server_lost_mid_run_stops_it_and_a_rerun_resumes(mock_server, data, shared_data,
                                                             tmp_path):
    out = tmp_path / "pred.jsonl"
    with pytest.raises(UserError) as e:
        predict_file(None, data, out, backend="vllm-server", server_url=mock_server.url,
                     concurrency=1, max_new_tokens=16, image_root=shared_data, progress=False)
    assert e.value.where == "--server-url" and "rerun" in e.value.reason
    assert [r["error"] for r in rows(out)] == [None, None]  # no error rows to skip later
    again = MockServer()
    try:
        counts = predict_file(None, data, out, backend="vllm-server", server_url=again.url,
                              concurrency=1, max_new_tokens=16, image_root=shared_data,
                              progress=False)
    finally:
        again.close()
    assert counts == {"predicted": 3, "errors": 0, "skipped": 2}
    assert len(rows(out)) == 5 and len(again.requests) == 3


def test_no_server_is_one_line_naming_the_url(data, tmp_path, capsys):
    from ocrsft.cli import main

    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "pred.jsonl"
    rc = main(["infer", "--data", str(data), "-o", str(out), "--backend", "vllm-server",
               "--server-url", f"http://127.0.0.1:{port}/v1"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1
    assert err.startswith("ocrsft infer: error: --server-url: cannot reach http://127.0.0.1:")
    assert "refused" in err.lower() and not out.exists()
