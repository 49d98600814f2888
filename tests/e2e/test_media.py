"""Speech, transcription, translation and image edits through the official `openai` SDK, against
the real `burncloud` binary and a local server that speaks OpenAI's media wire format: uploads
arrive whole (renamed where the channel maps the model), audio streams back, and every call is
logged with its units and priced by them."""

import io
import json
import struct
import tempfile
import urllib.error
import urllib.request
import wave
from pathlib import Path

import openai
import pytest

from conftest import UPSTREAM_KEY, BurnCloud, poll, stop

SPEECH_BYTES = 4096 * 8


def client(app, key):
    return openai.OpenAI(base_url=app.base + "/v1", api_key=key, max_retries=0, timeout=60)


def make_wav(path, seconds, rate=16000):
    """A real mono 16-bit PCM WAV: a 440 Hz tone of `seconds`."""
    import math

    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        frames = b"".join(
            struct.pack("<h", int(8000 * math.sin(2 * math.pi * 440 * i / rate))) for i in range(int(seconds * rate)))
        out.writeframes(frames)
    return path


def one_pixel_png():
    import base64

    return base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==")


@pytest.fixture
def media(upstream):
    with tempfile.TemporaryDirectory() as data_dir:
        app = BurnCloud(Path(data_dir), extra_env={"BURNCLOUD_MAX_UPLOAD_MB": "8"})
        app.console("POST", "/console/api/channels", {
            "name": "media", "kind": "openai", "base_url": upstream + "/v1", "api_key": UPSTREAM_KEY,
            "models": ["tts-1", "whisper-1", "gpt-4o-transcribe", "gpt-image-1", "whisper"],
            "model_mapping": {"whisper": "whisper-1"}})
        app.console("POST", "/console/api/channels", {
            "name": "claude", "kind": "anthropic", "base_url": upstream, "api_key": UPSTREAM_KEY,
            "models": ["claude-voice"]})
        yield app
        stop(app.process)


def logs(app, count):
    return poll(lambda: app.console("GET", "/console/api/logs?limit=50")["items"], lambda rows: len(rows) >= count)


def test_speech_streams_back_and_is_billed_by_characters(media):
    media.console("PUT", "/console/api/prices/tts-1", {
        "input_per_mtok": "0", "output_per_mtok": "0", "per_million_characters": "15"})
    sdk = client(media, media.token())
    text = "Hello from BurnCloud, 你好"
    assert len(text) == 24
    with sdk.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text, response_format="wav") as response:
        assert response.headers["content-type"] == "audio/wav"
        pieces = list(response.iter_bytes(chunk_size=4096))
    audio = b"".join(pieces)
    assert len(audio) == SPEECH_BYTES and len(pieces) >= 2, "the audio arrives in pieces, as the upstream sends it"
    assert audio[:4] == bytes(((i * 7 + len(text.encode())) % 256) for i in range(4))

    events = []
    with sdk.audio.speech.with_streaming_response.create(
            model="tts-1", voice="alloy", input=text, stream_format="sse") as response:
        for line in response.iter_lines():
            if line.startswith("data: "):
                events.append(json.loads(line[6:]))
    assert [e["type"] for e in events] == ["speech.audio.delta"] * 8 + ["speech.audio.done"]

    rows = logs(media, 2)
    assert {row["endpoint"] for row in rows} == {"/v1/audio/speech"}
    for row in rows:
        assert row["status"] == 200 and row["characters"] == len(text), row
        # 24 characters (two of them Chinese) at 15 per million.
        assert row["cost"] == "0.00036" and row["priced"], row
    streamed = next(row for row in rows if row["is_stream"])
    assert (streamed["prompt_tokens"], streamed["completion_tokens"], streamed["usage_source"]) == (14, 101, "upstream")


@pytest.mark.filterwarnings("ignore:deprecated:DeprecationWarning")
def test_transcriptions_and_translations_upload_whole_in_every_format(media, tmp_path):
    media.console("PUT", "/console/api/prices/whisper-1", {
        "input_per_mtok": "0", "output_per_mtok": "0", "per_audio_second": "0.0001"})
    sdk = client(media, media.token())
    recording = make_wav(tmp_path / "speech note.wav", seconds=3)
    size = recording.stat().st_size

    with recording.open("rb") as audio:
        heard = sdk.audio.transcriptions.create(model="whisper-1", file=audio)
    assert heard.text == f"transcribed {size} bytes of speech note.wav with whisper-1"

    with recording.open("rb") as audio:
        plain = sdk.audio.transcriptions.create(model="whisper-1", file=audio, response_format="text")
    assert plain.strip() == heard.text

    with recording.open("rb") as audio:
        verbose = sdk.audio.transcriptions.create(model="whisper-1", file=audio, response_format="verbose_json")
    assert verbose.duration == pytest.approx(3.0) and verbose.segments[0].text == heard.text

    with recording.open("rb") as audio:
        subtitles = sdk.audio.transcriptions.create(model="whisper-1", file=audio, response_format="srt")
    assert "00:00:00,000 -->" in subtitles

    # A model the channel maps: the upstream is asked for its own name, inside the same form.
    with recording.open("rb") as audio:
        translated = sdk.audio.translations.create(model="whisper", file=audio)
    assert translated.text == f"translated {size} bytes of speech note.wav with whisper-1"

    with recording.open("rb") as audio:
        events = list(sdk.audio.transcriptions.create(model="gpt-4o-transcribe", file=audio, stream=True))
    assert events[-1].type == "transcript.text.done"
    assert "".join(e.delta for e in events[:-1]).strip() == events[-1].text
    assert events[-1].text == f"transcribed {size} bytes of speech note.wav with gpt-4o-transcribe"

    rows = logs(media, 6)
    by_endpoint = {}
    for row in rows:
        by_endpoint.setdefault(row["endpoint"], []).append(row)
    assert len(by_endpoint["/v1/audio/transcriptions"]) == 5 and len(by_endpoint["/v1/audio/translations"]) == 1
    for row in rows:
        assert row["status"] == 200 and row["audio_ms"] == 3000, row
    whisper_rows = [row for row in rows if row["model"] != "gpt-4o-transcribe"]
    # 3 s at 0.0001 per second, the mapped name priced as its upstream model.
    assert all(row["cost"] == "0.0003" for row in whisper_rows), whisper_rows
    streamed = next(row for row in rows if row["model"] == "gpt-4o-transcribe")
    assert streamed["is_stream"] and (streamed["prompt_tokens"], streamed["completion_tokens"]) == (14, 9)
    mapped = by_endpoint["/v1/audio/translations"][0]
    assert (mapped["model"], mapped["upstream_model"]) == ("whisper", "whisper-1")


def test_a_form_in_any_order_and_past_the_memory_bound_arrives_whole(media, tmp_path):
    """OpenAI's Node SDK puts the file before the model; a 5 MB recording goes through the disk spool."""
    recording = make_wav(tmp_path / "long.wav", seconds=160)
    data = recording.read_bytes()
    assert len(data) > 5_000_000
    boundary = "----burncloud-test-boundary"
    body = io.BytesIO()
    body.write(f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="long.wav"\r\n'
               'Content-Type: audio/wav\r\n\r\n'.encode())
    body.write(data)
    body.write(f'\r\n--{boundary}\r\nContent-Disposition: form-data; name="model"\r\n\r\nwhisper\r\n'
               f'--{boundary}--\r\n'.encode())
    request = urllib.request.Request(media.base + "/v1/audio/transcriptions", data=body.getvalue(), method="POST",
                                     headers={"Authorization": f"Bearer {media.token()}",
                                              "Content-Type": f"multipart/form-data; boundary={boundary}"})
    with urllib.request.urlopen(request, timeout=60) as response:
        answer = json.loads(response.read())
    assert answer["text"] == f"transcribed {len(data)} bytes of long.wav with whisper-1"
    (row,) = logs(media, 1)
    assert row["audio_ms"] == 160_000 and row["upstream_model"] == "whisper-1"


def test_image_edits_upload_every_image_and_are_billed_per_image(media, tmp_path):
    media.console("PUT", "/console/api/prices/gpt-image-1", {
        "input_per_mtok": "5", "output_per_mtok": "40", "per_image": "0.04"})
    sdk = client(media, media.token())
    first, second = tmp_path / "a.png", tmp_path / "b.png"
    first.write_bytes(one_pixel_png())
    second.write_bytes(one_pixel_png() * 2)
    with first.open("rb") as a, second.open("rb") as b:
        edited = sdk.images.edit(model="gpt-image-1", image=[a, b], prompt="give it a hat", n=2)
    assert len(edited.data) == 2 and edited.data[0].b64_json
    assert edited.usage.input_tokens == 50 and edited.usage.output_tokens == 272
    (row,) = logs(media, 1)
    assert (row["endpoint"], row["images"], row["prompt_tokens"], row["completion_tokens"]) == (
        "/v1/images/edits", 2, 50, 272)
    # 50 × 5 / 1M + 272 × 40 / 1M + 2 × 0.04.
    assert row["cost"] == "0.09113"


def test_media_routes_answer_errors_in_openai_shape(media, tmp_path):
    recording = make_wav(tmp_path / "a.wav", seconds=1)
    with pytest.raises(openai.AuthenticationError):
        with recording.open("rb") as audio:
            client(media, "sk-bc-wrong").audio.transcriptions.create(model="whisper-1", file=audio)
    sdk = client(media, media.token())
    with pytest.raises(openai.NotFoundError) as missing:
        with recording.open("rb") as audio:
            sdk.audio.transcriptions.create(model="no-such-whisper", file=audio)
    assert missing.value.code == "model_not_found"
    with pytest.raises(openai.NotFoundError):
        sdk.audio.speech.create(model="no-such-voice", voice="alloy", input="hi")
    with pytest.raises(openai.BadRequestError) as refused:
        sdk.audio.speech.create(model="claude-voice", voice="alloy", input="hi")
    assert "/v1/audio/speech" in refused.value.message

    def raw(path, body, content_type):
        request = urllib.request.Request(media.base + path, data=body, method="POST", headers={
            "Authorization": f"Bearer {media.token()}", "Content-Type": content_type})
        with pytest.raises(urllib.error.HTTPError) as failed:
            urllib.request.urlopen(request, timeout=30)
        return failed.value.code, json.loads(failed.value.read())["error"]

    status, error = raw("/v1/audio/transcriptions", b'{"model": "whisper-1"}', "application/json")
    assert status == 400 and "multipart/form-data" in error["message"] and error["type"] == "invalid_request_error"
    status, error = raw("/v1/audio/transcriptions", b"--b\r\nContent-Disposition: form-data; name=\"model\"\r\n\r\nwh",
                        "multipart/form-data; boundary=b")
    assert status == 400 and "closing boundary" in error["message"]
    status, error = raw("/v1/images/edits", b"--b\r\nContent-Disposition: form-data; name=\"prompt\"\r\n\r\nx\r\n--b--",
                        "multipart/form-data; boundary=b")
    assert status == 400 and "model" in error["message"]
    status, error = raw("/v1/audio/speech", b'{"model": ', "application/json")
    assert status == 400

    # Past BURNCLOUD_MAX_UPLOAD_MB (8 here): refused by the declared length, before it is read.
    big = make_wav(tmp_path / "big.wav", seconds=300)
    with pytest.raises(openai.APIStatusError) as too_large:
        with big.open("rb") as audio:
            sdk.audio.transcriptions.create(model="whisper-1", file=audio)
    assert too_large.value.status_code == 413 and too_large.value.type == "invalid_request_error"

    limited = client(media, media.token(rpm_limit=1))
    with recording.open("rb") as audio:
        limited.audio.transcriptions.create(model="whisper-1", file=audio)
    with pytest.raises(openai.RateLimitError):
        with recording.open("rb") as audio:
            limited.audio.transcriptions.create(model="whisper-1", file=audio)
