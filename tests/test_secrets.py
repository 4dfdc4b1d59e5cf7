"""Secret scanning: each detector fires on a real-looking secret and stays quiet on code and prose."""

import pytest

from core.secrets import find_secrets
from tests.documents import fake_secrets


@pytest.mark.parametrize("kind", list(fake_secrets()))
def test_each_detector_fires(kind):
    assert kind in {f.kind for f in find_secrets(fake_secrets()[kind])}


@pytest.mark.parametrize(
    "text",
    [
        'name, secret = item.partition("=")',
        "api_key: Annotated[str | None, Security(header)]",
        "secret = compute_secret_value(x)",
        "password: str = Field(description='...')",
        "pwd = self.password_field",
        "password: <votre mot de passe>",
        "Le mot de passe doit contenir 12 caractères.",
        "token = ${API_TOKEN}",
    ],
)
def test_code_and_prose_are_not_secrets(text):
    assert find_secrets(text) == []


@pytest.mark.parametrize("text", ['password = "Sup3rS3cret!"', "PASSWORD=changeme123", "api_key: 'k9f8g7h6j5'"])
def test_assignments_of_literal_values_are_secrets(text):
    assert [f.kind for f in find_secrets(text)] == ["password assignment"]


def test_the_scanner_does_not_flag_its_own_source():
    from pathlib import Path

    import core.secrets

    assert find_secrets(Path(core.secrets.__file__).read_text()) == []
