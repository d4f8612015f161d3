"""Pure parts of alert delivery: signatures, Retry-After, backoff, filters, tokens, settings."""

from __future__ import annotations

import base64
import random
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from monitor.alerts.filter import AlertFilter, FilterError
from monitor.alerts.retry import RetryPolicy, is_retryable, parse_retry_after
from monitor.alerts.signing import (
    SignatureError,
    legacy_signature,
    new_secret,
    sign_headers,
    signing_key,
    verify,
    verify_legacy,
)
from monitor.alerts.subscriber import Subscriber, alert_frame
from monitor.alerts.subscriptions import SinceError, parse_since
from monitor.alerts.tokens import TokenRegistry, bearer_token, new_token, token_hash
from monitor.alerts.webhook import WebhookTarget, redact_url, webhook_targets
from monitor.errors import ConfigError
from monitor.settings import Settings, WebhookSettings, load_settings
from tests.alerting import sample_alert

KEY = b"whsec-test"
BODY = b'{"alert_id":"hma_0"}'
MSG_ID = "hma_0"
NOW = 1_767_225_600


# -- signatures ------------------------------------------------------------------------


def test_signature_matches_the_standard_webhooks_reference_vector() -> None:
    # The reference library's own test vector (standard-webhooks/standard-webhooks,
    # libraries/python/tests/test_webhooks.py, test_sign_function): not computed by us.
    key = signing_key(b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    headers = sign_headers(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", body, now=1614265330)
    assert headers == {
        "webhook-id": "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "webhook-timestamp": "1614265330",
        "webhook-signature": "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=",
    }


def test_legacy_headers_are_hmac_sha256_hex_of_timestamp_dot_body() -> None:
    # echo -n '1767225600.{"alert_id":"hma_0"}' | openssl dgst -sha256 -hmac whsec-test
    expected = "d3db510b05ac3993425a8ec49ef3a2313fccb66d5054bbca1246d708e8787e4c"
    assert legacy_signature(KEY, NOW, BODY) == expected
    headers = sign_headers(KEY, MSG_ID, BODY, legacy=True, now=NOW)
    assert headers["X-HM-Timestamp"] == "1767225600"
    assert headers["X-HM-Signature"] == f"v1={expected}"
    verify_legacy(KEY, headers["X-HM-Timestamp"], headers["X-HM-Signature"], BODY, now=NOW)
    assert "X-HM-Signature" not in sign_headers(KEY, MSG_ID, BODY, now=NOW)


@pytest.mark.parametrize(
    ("secret", "message"),
    [
        (b"whsec_not base64!", "base64"),
        (b"whsec_" + base64.b64encode(b"x" * 23), "24 to 64 random bytes"),
        (b"whsec_" + base64.b64encode(b"x" * 65), "24 to 64 random bytes"),
    ],
)
def test_a_malformed_whsec_secret_is_refused(secret: bytes, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        signing_key(secret)


def test_secrets_without_the_prefix_are_the_key_and_new_secrets_decode_to_32_bytes() -> None:
    assert signing_key(b"plain-old-secret") == b"plain-old-secret"
    fresh = new_secret()
    assert fresh.startswith("whsec_") and len(signing_key(fresh.encode())) == 32


def test_verify_accepts_a_fresh_signature_one_of_several_and_any_header_case() -> None:
    h = sign_headers(KEY, MSG_ID, BODY, now=NOW)
    assert verify(KEY, h, BODY, now=NOW + 299) == MSG_ID
    rotated = dict(h, **{"webhook-signature": "v1,AAAA " + h["webhook-signature"]})
    verify(KEY, rotated, BODY, now=NOW)
    verify(KEY, {k.title(): v for k, v in h.items()}, BODY, now=NOW)


@pytest.mark.parametrize(
    ("key", "body", "now", "message"),
    [
        (b"other-key", BODY, NOW, "does not match"),
        (KEY, BODY + b" ", NOW, "does not match"),
        (KEY, BODY, NOW + 301, "stale or replayed"),
        (KEY, BODY, NOW - 301, "stale or replayed"),
    ],
)
def test_verify_rejects_wrong_key_tampered_body_and_replays(
    key: bytes, body: bytes, now: int, message: str
) -> None:
    h = sign_headers(KEY, MSG_ID, BODY, now=NOW)
    with pytest.raises(SignatureError, match=message):
        verify(key, h, body, now=now)


def test_verify_rejects_missing_or_malformed_headers_and_a_changed_id() -> None:
    h = sign_headers(KEY, MSG_ID, BODY, now=NOW)
    with pytest.raises(SignatureError, match="missing"):
        verify(KEY, {k: v for k, v in h.items() if k != "webhook-id"}, BODY, now=NOW)
    with pytest.raises(SignatureError, match="not an integer"):
        verify(KEY, dict(h, **{"webhook-timestamp": "soon"}), BODY, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        verify(KEY, dict(h, **{"webhook-id": "hma_1"}), BODY, now=NOW)
    with pytest.raises(SignatureError, match="does not match"):
        sig = h["webhook-signature"].replace("v1,", "v1a,")
        verify(KEY, dict(h, **{"webhook-signature": sig}), BODY, now=NOW)
    with pytest.raises(ValueError, match="must not contain"):
        sign_headers(KEY, "a.b", BODY)


# -- retries ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("-3", 0.0),
        ("Wed, 21 Oct 2015 07:28:30 GMT", 30.0),
        ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),
        ("later", None),
        ("", None),
        (None, None),
    ],
)
def test_retry_after_seconds_or_http_date(value: str | None, seconds: float | None) -> None:
    now = datetime(2015, 10, 21, 7, 28, 0, tzinfo=UTC)
    assert parse_retry_after(value, now=now) == seconds


def test_backoff_doubles_with_jitter_caps_and_respects_retry_after() -> None:
    policy = RetryPolicy(max_attempts=10, initial_delay_s=1.0, max_delay_s=8.0)
    rng = random.Random(1)
    for attempt, base in [(1, 1.0), (2, 2.0), (3, 4.0), (4, 8.0), (9, 8.0)]:
        for _ in range(50):
            assert base / 2 <= policy.delay(attempt, rng=rng) <= base
    assert policy.delay(1, retry_after_s=30.0, rng=rng) == 30.0


@pytest.mark.parametrize(
    ("status", "retry"), [(500, True), (503, True), (429, True), (408, True), (400, False)]
)
def test_which_statuses_are_retried(status: int, retry: bool) -> None:
    assert is_retryable(status) is retry
    assert not is_retryable(404) and not is_retryable(410)


# -- filters ---------------------------------------------------------------------------


def test_filter_from_json_and_matching() -> None:
    f = AlertFilter.from_json(
        {"accounts": ["acct-1"], "assets": ["btc"], "min_net_benefit_usd": "100"}
    )
    assert f.assets == frozenset({"BTC"}) and f.min_net_benefit_usd == Decimal(100)
    assert f.matches(sample_alert(1, net_benefit="100.00"))
    assert not f.matches(sample_alert(1, net_benefit="99.99"))
    assert not f.matches(sample_alert(1, asset="ETH"))
    assert not f.matches(sample_alert(1, account="acct-2"))
    assert AlertFilter.from_json(None).matches(sample_alert(1, net_benefit="-5.00"))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([], "must be a JSON object"),
        ({"accounts": "acct-1"}, "filter.accounts must be a list of strings"),
        ({"assets": [1]}, "filter.assets must be a list of strings"),
        ({"min_net_benefit_usd": True}, "must be a number"),
        ({"min_net_benefit_usd": "lots"}, "must be a number"),
        ({"min_net_benefit_usd": "NaN"}, "must be finite"),
        ({"wallets": []}, "unknown field"),
    ],
)
def test_filter_errors_name_the_field(data: object, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        AlertFilter.from_json(data)


# -- subscriber state (replay, then live) ------------------------------------------------


def test_alerts_held_during_replay_follow_it_once() -> None:
    a1, a2, a3 = (sample_alert(i) for i in range(3))
    sub = Subscriber("ops", AlertFilter(), 10, replaying=True)
    sub.offer(a2, alert_frame(b"2"))  # live while replaying, and also in the replay
    sub.offer(a3, alert_frame(b"3"))  # live, recorded after the replay's last page
    assert sub.outbox.empty()
    assert sub.take_replayed(a1.alert_id) and sub.take_replayed(a2.alert_id)
    sub.go_live(b"done")
    out = [sub.outbox.get_nowait() for _ in range(sub.outbox.qsize())]
    assert out == [b"done", alert_frame(b"3")]
    sub.offer(a3, alert_frame(b"3"))  # the same id again: not sent twice
    assert sub.outbox.empty()


def test_a_full_outbox_cuts_the_subscriber_off_instead_of_growing() -> None:
    sub = Subscriber("ops", AlertFilter(), 2, replaying=False)
    for i in range(5):
        sub.offer(sample_alert(i), alert_frame(b"x"))
    assert sub.outbox.qsize() == 2 and sub.cut.is_set()
    assert "slow consumer" in sub.cut_reason


def test_too_many_held_alerts_during_replay_cut_the_subscriber_off() -> None:
    sub = Subscriber("ops", AlertFilter(), 2, replaying=True)
    for i in range(3):
        sub.offer(sample_alert(i), alert_frame(b"x"))
    assert sub.cut.is_set() and "during replay" in sub.cut_reason


# -- tokens and since --------------------------------------------------------------------


def test_tokens_are_matched_by_hash_only() -> None:
    token = new_token()
    registry = TokenRegistry([("ops", token_hash(token)), ("ci", token_hash(new_token()))])
    assert registry.holder(token) == "ops"
    assert registry.holder(token + "x") is None
    assert token_hash(token) != token and len(token_hash(token)) == 64


@pytest.mark.parametrize(
    ("header", "token"),
    [("Bearer abc", "abc"), ("bearer  abc ", "abc"), ("Basic abc", None), ("Bearer", None)],
)
def test_bearer_header_parsing(header: str, token: str | None) -> None:
    assert bearer_token(header) == token


def test_since_is_an_alert_id_or_a_time_normalised_to_utc_millis() -> None:
    assert parse_since("hma_0123456789abcdef01234567") == "hma_0123456789abcdef01234567"
    assert parse_since("2026-03-01T13:00:00+01:00") == "2026-03-01T12:00:00.000Z"
    assert parse_since("2026-03-01") == "2026-03-01T00:00:00.000Z"
    assert parse_since(None) is None
    with pytest.raises(SinceError, match="neither an alert id"):
        parse_since("hma_short")


# -- settings ----------------------------------------------------------------------------


def test_example_config_parses_to_the_defaults() -> None:
    example = Path(__file__).parents[2] / "config" / "monitor.example.toml"
    settings = load_settings(example, env={})
    assert settings.webhooks == Settings().webhooks == []
    assert settings.subscriptions == Settings().subscriptions


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "m.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_json_webhook_without_a_secret_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, '[[webhooks]]\nname = "a"\nurl = "https://example.com/h"\n')
    with pytest.raises(ConfigError, match=r"webhooks\.0.*json webhooks are signed"):
        load_settings(path, env={})


def test_websocket_port_without_tokens_is_refused(tmp_path: Path) -> None:
    path = write(tmp_path, "[subscriptions]\nwebsocket_port = 9465\n")
    with pytest.raises(ConfigError, match="no tokens"):
        load_settings(path, env={})


def test_webhook_secrets_come_from_env_or_file_and_are_never_shown(tmp_path: Path) -> None:
    secret_file = tmp_path / "secret"
    secret_file.write_text("from-file\n")
    by_env = WebhookSettings(name="a", url="https://h.example/p/TOKEN", secret_env="HOOK_KEY")
    by_file = WebhookSettings(
        name="b", url_env="SLACK_URL", format="slack", secret_file=str(secret_file)
    )
    a, b = webhook_targets(
        [by_env, by_file], env={"HOOK_KEY": "from-env", "SLACK_URL": "https://s/T/B/X"}
    )
    assert (a.secret, b.secret, b.url) == (b"from-env", b"from-file", "https://s/T/B/X")
    assert "from-env" not in repr(a) and "TOKEN" not in repr(a)
    assert redact_url(a.url) == "https://h.example/…"
    with pytest.raises(ConfigError, match="environment variable HOOK_KEY"):
        WebhookTarget.from_settings(by_env, env={})
    with pytest.raises(ConfigError, match="name 'a' is used twice"):
        webhook_targets([by_env, by_env], env={"HOOK_KEY": "k"})


# -- the documentation's examples work -----------------------------------------------------

DOCS = Path(__file__).parents[2] / "docs"


def test_the_receiver_snippet_in_docs_webhooks_verifies_our_signatures() -> None:
    text = (DOCS / "webhooks.md").read_text(encoding="utf-8")
    code = text.split("```python\n", 1)[1].split("```", 1)[0]
    scope: dict[str, object] = {}
    exec(compile(code, "docs/webhooks.md", "exec"), scope)
    check = scope["verify"]
    assert callable(check)
    secret = new_secret()
    key = signing_key(secret.encode())
    headers = sign_headers(key, MSG_ID, BODY)
    assert check(secret, headers, BODY) == MSG_ID
    with pytest.raises(ValueError, match="bad signature"):
        check(secret, headers, BODY + b"x")
    with pytest.raises(ValueError, match="stale"):
        check(secret, sign_headers(key, MSG_ID, BODY, now=NOW), BODY)


def test_the_commented_webhook_example_in_the_example_config_is_valid(tmp_path: Path) -> None:
    example = (Path(__file__).parents[2] / "config" / "monitor.example.toml").read_text()
    block = example.split("# [[webhooks]]\n", 1)[1].split("\n\n", 1)[0]
    toml = "[[webhooks]]\n" + "\n".join(line[2:] for line in block.splitlines())
    settings = load_settings(write(tmp_path, toml), env={})
    (hook,) = settings.webhooks
    assert (hook.name, hook.format, hook.secret_env) == ("ops", "json", "HM_HOOK_SECRET")
    assert hook.filter.kinds == [] and hook.max_attempts == 8


def test_a_whsec_secret_is_decoded_and_a_bad_one_names_the_subscription() -> None:
    entry = WebhookSettings(name="ops", url="https://h.example/p", secret_env="HOOK_KEY")
    key = base64.b64encode(bytes(range(32))).decode()
    target = WebhookTarget.from_settings(entry, env={"HOOK_KEY": f"whsec_{key}"})
    assert target.secret == bytes(range(32))
    with pytest.raises(ConfigError, match=r"webhook 'ops': the secret in HOOK_KEY: .*base64"):
        WebhookTarget.from_settings(entry, env={"HOOK_KEY": "whsec_%%%"})


def test_the_kinds_filter_of_the_settings_reaches_the_subscription() -> None:
    entry = WebhookSettings.model_validate(
        {"name": "a", "url": "https://h/p", "format": "slack", "filter": {"kinds": ["deadline"]}}
    )
    target = WebhookTarget.from_settings(entry, env={})
    assert not target.filter.matches(sample_alert(1))  # a harvest alert
