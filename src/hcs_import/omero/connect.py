"""Server options and sessions: where to connect and how to authenticate, without ever logging a secret.

The password comes from the environment (OMERO_PASSWORD) or an interactive prompt, never from the
command line (it would show in `ps` and shell history); a session key is the alternative for scripts
and hooks that already hold a session.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from ..errors import HcsImportError

PASSWORD_ENV = "OMERO_PASSWORD"
SESSION_ENV = "OMERO_SESSION_KEY"


class OmeroError(HcsImportError):
    """Talking to the OMERO server failed in a way the user can act on."""


class OmeroMissing(HcsImportError):
    """omero-py is not installed."""


def require_omero() -> None:
    """Fail with an actionable message when omero-py (the [omero] extra) is not installed."""
    try:
        import omero
        import omero.clients  # noqa: F401
    except ImportError:
        raise OmeroMissing("uploading to OMERO needs omero-py: pip install 'hcs-import[omero]'") from None


@dataclass(frozen=True)
class ServerOptions:
    """Where and as whom to connect. `repr` hides the secrets so options can be logged safely."""

    host: str
    port: int = 4064
    user: str | None = None
    session_key: str | None = field(default=None, repr=False)
    group: str | None = None
    password_source: Callable[[], str] | None = field(default=None, repr=False, compare=False)

    def password(self) -> str:
        """The password from OMERO_PASSWORD, else from `password_source` (an interactive prompt)."""
        value = os.environ.get(PASSWORD_ENV)
        if value:
            return value
        if self.password_source is not None:
            return self.password_source()
        raise OmeroError(f"no password: set {PASSWORD_ENV} or set {SESSION_ENV} / --session-key-file")


def service_factory(session: Any) -> Any:
    """The ServiceFactory behind an omero.client, a BlitzGateway or a ServiceFactory itself."""
    if hasattr(session, "getSession") and hasattr(session, "createSession"):  # omero.client
        return session.getSession()
    if hasattr(session, "c") and hasattr(session, "getQueryService"):  # BlitzGateway
        return session.c.getSession()
    return session


@contextmanager
def open_session(options: ServerOptions) -> Iterator[Any]:
    """A connected omero.client for the options; closed on exit, even on error."""
    require_omero()
    import omero
    import omero.clients

    client = omero.client(options.host, options.port)
    try:
        try:
            if options.session_key:
                client.joinSession(options.session_key)
            else:
                if not options.user:
                    raise OmeroError("--user is required unless a session key is given "
                                     f"({SESSION_ENV} or --session-key-file)")
                client.createSession(options.user, options.password())
            client.enableKeepAlive(60)
            if options.group:
                sf = client.getSession()
                admin = sf.getAdminService()
                group = admin.lookupGroup(options.group)
                sf.setSecurityContext(group)
        except omero.ClientError as exc:
            raise OmeroError(f"{options.host}:{options.port}: {exc}") from None
        except (omero.SecurityViolation, omero.RemovedSessionException, omero.ApiUsageException) as exc:
            # The server's message never contains the password; no traceback is shown to the user.
            raise OmeroError(f"{options.host}:{options.port}: login failed: {type(exc).__name__}") from None
        except Exception as exc:  # Ice connection errors have no common public base in omero-py
            if type(exc).__module__.startswith("Ice"):
                raise OmeroError(f"{options.host}:{options.port}: cannot connect: {type(exc).__name__}") from None
            raise
        yield client
    finally:
        try:
            client.closeSession()
        except Exception as exc:  # closing after a failed connect raises the same Ice error again
            if not type(exc).__module__.startswith("Ice"):
                raise
