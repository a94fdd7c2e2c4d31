"""Foreign text reaches status, Events and logs only as a sanitized, bounded excerpt."""

import pytest

from kubetune.text import MASK, excerpt, sanitize


@pytest.mark.parametrize(
    ("text", "secret"),
    [
        ("login failed: password=hunter2-xyz", "hunter2"),
        ('{"api_key": "sk-live-0123456789"}', "sk-live"),
        ("Authorization: Bearer abc.def.ghi-123456", "abc.def"),
        ("fetch https://bob:s3cr3t@example.com/x", "s3cr3t"),
        ("token hf_AbCdEfGhIjKlMnOpQrSt used", "hf_AbCd"),
        ("key 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", "9f86d08"),
        ("-----BEGIN RSA PRIVATE KEY----- MIIEow -----END RSA PRIVATE KEY-----", "MIIEow"),
    ],
)
def test_credential_shaped_text_is_masked(text: str, secret: str) -> None:
    cleaned = sanitize(text)
    assert secret not in cleaned and MASK in cleaned


def test_ordinary_text_is_kept() -> None:
    text = "CUDA out of memory at step 12 (lr=0.0003, lora_r=16)"
    assert sanitize(text) == text


def test_one_line_without_control_characters_and_bounded() -> None:
    text = "line1\nline2\x1b[31m red \x00" + "z" * 1000
    cut = excerpt(text, limit=50)
    assert "\n" not in cut and "\x1b" not in cut and "\x00" not in cut
    assert len(cut) == 50 and cut.endswith("...")
