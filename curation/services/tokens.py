from __future__ import annotations

from django.contrib.auth.models import User

from curation.models import ApiToken


def api_token_create(*, user: User, name: str) -> tuple[ApiToken, str]:
    """Create a token; the key is returned once and only its hash is stored."""
    key = ApiToken.new_key()
    token = ApiToken.objects.create(
        user=user, name=name, prefix=key[:12], key_hash=ApiToken.hash_key(key)
    )
    return token, key
