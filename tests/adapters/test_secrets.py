"""``FernetSecretBox``: source API keys sealed at rest, opened for the runs."""

import pytest

from spark_adapters.secrets import FernetSecretBox
from spark_core.errors import SparkError


def test_a_sealed_key_opens_to_itself_every_time_and_only_with_its_own_key() -> None:
    """The token is not the key; opening it (again and again: every run opens it) gives the
    key back; a box with another key refuses it, even after the right box opened it, and
    says what to do."""
    box = FernetSecretBox.from_passphrase("the passphrase")
    token = box.seal("sk-secret")
    assert "sk-secret" not in token
    assert [box.open(token) for _ in range(3)] == ["sk-secret"] * 3
    other = FernetSecretBox.from_passphrase("another passphrase")
    with pytest.raises(SparkError, match="re-enter the source's API key"):
        other.open(token)
    assert other.open(other.seal("sk-other")) == "sk-other"
    with pytest.raises(SparkError, match="cannot be decrypted"):
        box.open(token[:-4] + "AAAA")
