"""Store URLs with their secrets hidden: the one redactor every message uses."""

from __future__ import annotations

import pytest

from dsxir.store.redact import HIDDEN, redact_text, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("postgresql://ckpt:s3cret@db/x", f"postgresql://ckpt:{HIDDEN}@db/x"),
        ("postgresql://ckpt@db/x?password=s3cret&schema=a", f"postgresql://ckpt@db/x?password={HIDDEN}&schema=a"),
        ("postgres://u:p@h:5432/d?sslpassword=k&sslmode=require", f"postgres://u:{HIDDEN}@h:5432/d?sslpassword={HIDDEN}&sslmode=require"),
        ("grpcs://h:443?token=abc&ca_file=/ca.pem", f"grpcs://h:443?token={HIDDEN}&ca_file=/ca.pem"),
        ("grpc://h:1?token_env=NAME", "grpc://h:1?token_env=NAME"),
        ("file:/tmp/store", "file:/tmp/store"),
        ("memory:", "memory:"),
    ],
)  # fmt: skip
def test_redact_url_hides_passwords_and_secret_parameters(url: str, shown: str) -> None:
    assert redact_url(url) == shown
    assert "s3cret" not in redact_url(url)


def test_redact_text_hides_every_url_and_libpq_word_and_keeps_the_rest() -> None:
    text = (
        "cannot open postgresql://u:pw1@db/x?password=pw2&pool_timeout=3: refused; "
        "conninfo host=db password=pw3 user=u and 'password=pw 4'"
    )
    shown = redact_text(text)
    for secret in ("pw1", "pw2", "pw3", "pw 4"):
        assert secret not in shown
    assert "pool_timeout=3: refused; conninfo host=db" in shown
    assert "user=u" in shown
    assert redact_text(shown) == shown  # idempotent


def test_text_without_secrets_is_unchanged() -> None:
    text = "session s1 of file:/data/store: generation 3, key order kept"
    assert redact_text(text) == text
