"""A reversible, visibly-not-plain secret box for core tests."""

import base64


class FakeSecretBox:
    """The ``SecretBox`` port without cryptography: reversible and easy to recognise."""

    def seal(self, plaintext: str) -> str:
        """Wrap the text so that it is never stored as given."""
        return "sealed:" + base64.b64encode(plaintext[::-1].encode()).decode()

    def open(self, token: str) -> str:
        """Undo ``seal``."""
        return base64.b64decode(token.removeprefix("sealed:")).decode()[::-1]
