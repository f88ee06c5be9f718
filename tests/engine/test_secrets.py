"""Secrets: stored and read through a real file keyring, never shown, clear errors without a backend."""

from __future__ import annotations

import pickle
import subprocess
import sys

import keyring
import keyring.backend
import keyring.backends.fail
import keyring.backends.null
import pytest

from common.errors import SecretError
from common.secrets import (
    SERVICE,
    Secret,
    describe_backend,
    read_secret,
    read_secrets,
    store_secret,
)
from engine_helpers import REPO

TOKEN = "AQAAAAAtest-token-4f9c2e1b"


def test_stored_secret_reads_back_wrapped(file_keyring: keyring.backend.KeyringBackend) -> None:
    """store_secret writes service TOLOKA; read_secret returns a Secret that hides its value."""
    store_secret("toloka_token", TOKEN)
    assert keyring.get_password(SERVICE, "toloka_token") == TOKEN
    secret = read_secret("toloka_token")
    assert secret.reveal() == TOKEN
    for shown in (repr(secret), str(secret), f"{secret}", f"{secret!r:>40}"):
        assert TOKEN not in shown and "toloka_token" in shown
    with pytest.raises(TypeError):
        pickle.dumps(secret)


def test_missing_secrets_are_listed_together(file_keyring: keyring.backend.KeyringBackend) -> None:
    """One error names every absent entry and how to add it; present ones are returned."""
    store_secret("toloka_token", TOKEN)
    with pytest.raises(SecretError) as info:
        read_secrets(["toloka_token", "s3_key_id", "s3_access_key"])
    message = str(info.value)
    assert "'s3_key_id'" in message and "'s3_access_key'" in message and "add_password.py" in message
    assert "'toloka_token'" not in message and TOKEN not in message
    found = read_secrets(["toloka_token"])
    assert found == {"toloka_token": Secret("toloka_token", TOKEN)}


@pytest.mark.parametrize(("name", "value"), [("toloka_token", ""), ("", TOKEN), ("two words", TOKEN)])
def test_empty_values_and_bad_names_are_refused(
    file_keyring: keyring.backend.KeyringBackend, name: str, value: str
) -> None:
    """Nothing is stored for an empty value or a name toloka.ini could not refer to."""
    with pytest.raises(SecretError) as info:
        store_secret(name, value)
    assert TOKEN not in str(info.value)
    assert file_keyring.get_password(SERVICE, name) is None


@pytest.mark.parametrize("backend", [keyring.backends.fail.Keyring, keyring.backends.null.Keyring])
def test_unusable_backend_says_how_to_configure_one(backend: type[keyring.backend.KeyringBackend]) -> None:
    """With the fail or null backend, the error explains keyrings.alt, the env var and keyringrc.cfg."""
    previous = keyring.get_keyring()
    keyring.set_keyring(backend())
    try:
        for attempt in (lambda: store_secret("toloka_token", TOKEN), lambda: read_secret("toloka_token")):
            with pytest.raises(SecretError) as info:
                attempt()
            message = str(info.value)
            assert "keyrings.alt" in message and "PYTHON_KEYRING_BACKEND" in message
            assert "keyringrc.cfg" in message and TOKEN not in message
    finally:
        keyring.set_keyring(previous)


def test_backend_description_names_the_file(file_keyring: keyring.backend.KeyringBackend) -> None:
    """The confirmation can say where a file backend keeps secrets."""
    description = describe_backend(file_keyring)
    assert description.startswith("keyrings.alt.file.PlaintextKeyring (file ")
    assert "keyring_pass.cfg" in description


def test_misspelt_backend_variable_is_a_secret_error(keyring_env: dict[str, str]) -> None:
    """A PYTHON_KEYRING_BACKEND naming no class gives a clear SecretError, not a traceback from keyring."""
    env = dict(keyring_env, PYTHON_KEYRING_BACKEND="keyrings.alt.file.NoSuchKeyring")
    code = (
        "from common.secrets import read_secret\n"
        "from common.errors import SecretError\n"
        "try:\n    read_secret('toloka_token')\n"
        "except SecretError as exc:\n    print('SecretError:', exc)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=True
    )
    assert result.stdout.startswith("SecretError: cannot read secret 'toloka_token'")
    assert "PYTHON_KEYRING_BACKEND" in result.stdout
