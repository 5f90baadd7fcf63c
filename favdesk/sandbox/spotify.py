"""A Spotify stand-in: the accounts service and the Web API's Liked Songs on a loopback HTTP server.

Real HTTP with Spotify's wire shapes (FACTS.md), a deterministic generated library of any size
(`spotify_library`), the authorize and token endpoints (`spotify_accounts`) and the Web API
(`spotify_api`) with switchable faults (`SpotifySandbox.faults`), so the demo and the tests
exercise the same failures users meet: 429s with `Retry-After`, quota exhaustion, 5xx bursts,
expiring tokens, refresh rotation and revocation, the plain-text 403 and a library that changes
mid-fetch. This module serves them on one port and keeps their state in `state_dir`.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import signal
import threading
from email.message import Message
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

from favdesk.sandbox.server import LoopbackServer, Reply
from favdesk.sandbox.spotify_accounts import AccountsService
from favdesk.sandbox.spotify_api import Listener, WebApi
from favdesk.sandbox.spotify_faults import Faults, Stats
from favdesk.sandbox.spotify_library import Library

DEMO_CLIENT_ID = "favdesk-demo"
DEFAULT_REDIRECT_URIS = ("http://127.0.0.1/callback",)
STATE_FILE = "spotify-sandbox.json"


class SpotifySandbox(LoopbackServer):
    """The stand-in server; `start()` it (or use `with`), point a client at its URLs."""

    thread_name = "spotify-sandbox"

    def __init__(
        self,
        *,
        tracks: int = 120,
        seed: int = 1,
        client_id: str = DEMO_CLIENT_ID,
        client_secret: str | None = None,
        user_id: str = "demo-listener",
        display_name: str = "Demo Listener",
        account_id: str | None = None,
        state_dir: str | os.PathLike[str] | None = None,
        port: int = 0,
        redirect_uris: tuple[str, ...] = DEFAULT_REDIRECT_URIS,
    ) -> None:
        super().__init__(port)
        self.faults = Faults()
        self.stats = Stats()
        self._state_path = Path(state_dir) / STATE_FILE if state_dir else None
        self._lock = threading.RLock()
        self.accounts = AccountsService(
            client_id=client_id,
            client_secret=client_secret,
            redirect_uris=tuple(redirect_uris),
            faults=self.faults,
            stats=self.stats,
            lock=self._lock,
            save_state=self._save_state,
        )
        self.library = self._load_state(seed, tracks)
        self.api = WebApi(
            listener=Listener(user_id, display_name, account_id),
            library=self.library,
            accounts=self.accounts,
            faults=self.faults,
            stats=self.stats,
            lock=self._lock,
            rng=random.Random(seed),
            base_url=lambda: self.api_url,
            save_state=self._save_state,
        )
        with self._lock:
            self._save_state()

    @property
    def accounts_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    @property
    def client_id(self) -> str:
        return self.accounts.client_id

    @property
    def redirect_uris(self) -> tuple[str, ...]:
        return self.accounts.redirect_uris

    @property
    def last_authorize(self) -> dict[str, str] | None:
        """The query of the latest `/authorize` request."""
        return self.accounts.last_authorize

    # -- helpers for tests and the demo ----------------------------------------------------

    def items(self) -> list[dict]:
        """The current library, newest first: fresh dicts equal to the items the API serves."""
        with self._lock:
            serials = list(self.library.serials)
        return [self.library.item(serial) for serial in serials]

    def add_tracks(self, count: int) -> None:
        """Like `count` new tracks (they appear at offset 0)."""
        with self._lock:
            self.library.add(count)
            self._save_state()

    def remove_tracks(self, count: int, at: int = 0) -> None:
        """Unlike `count` tracks from position `at` (0: the newest)."""
        with self._lock:
            self.library.remove(count, at)
            self._save_state()

    def update_track_details(self, count: int, at: int = 0) -> None:
        """Change the popularity of `count` tracks from position `at` (not kept in state_dir).

        Null and local tracks stay as they are: they have no details Spotify revises.
        """
        with self._lock:
            self.library.update_details(count, at)

    def expire_access_tokens(self) -> None:
        """Every access token issued so far expires now."""
        self.accounts.expire_access_tokens()

    def revoke_refresh_tokens(self) -> None:
        """The user revoked access: every refresh token answers "Refresh token revoked"."""
        self.accounts.end_refresh_tokens("revoked")

    def expire_refresh_tokens(self) -> None:
        """Six months passed: every refresh token answers "Refresh token expired"."""
        self.accounts.end_refresh_tokens("expired")

    # -- dispatch ----------------------------------------------------------------------------

    def handle(self, method: str, target: str, headers: Message, body: bytes) -> Reply:
        """Answer one HTTP request: `/v1/` goes to the Web API, the rest to the accounts service."""
        self.stats.bump("requests")
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        if parts.path.startswith("/v1/"):
            return self.api.handle(method, parts.path, query, headers)
        return self.accounts.handle(method, parts.path, query, headers, body)

    def exchanged(self, connection: int, arrived: float, reply: Reply, replied: float) -> None:
        """Per connection, when each 429 went out and when the next request came after it."""
        wait = reply.headers.get("Retry-After") if reply.status == 429 else None
        self.stats.exchanged(connection, arrived, replied, None if wait is None else float(wait))

    # -- persistence -------------------------------------------------------------------------

    def _load_state(self, seed: int, tracks: int) -> Library:
        """The saved library and refresh tokens, if a state file exists; else a fresh library."""
        if self._state_path is None or not self._state_path.exists():
            return Library.generate(seed, tracks)
        state = json.loads(self._state_path.read_text(encoding="utf-8"))
        self.accounts.restore_refresh_state(state["refresh_tokens"])
        return Library.from_state(state["library"])

    def _save_state(self) -> None:
        """Write the library and refresh tokens atomically (call with the lock held)."""
        if self._state_path is None:
            return
        state = {
            "library": self.library.to_state(),
            "refresh_tokens": self.accounts.refresh_state(),
        }
        self._state_path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self._state_path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
        temporary.write_text(json.dumps(state), encoding="utf-8")
        os.replace(temporary, self._state_path)


def main(argv: list[str] | None = None) -> int:
    """Run the stand-in until Ctrl-C or SIGTERM."""
    parser = argparse.ArgumentParser(
        prog="python -m favdesk.sandbox.spotify", description="A local Spotify stand-in."
    )
    parser.add_argument("--port", type=int, default=0, help="port on 127.0.0.1 (0: any free)")
    parser.add_argument("--tracks", type=int, default=120, help="liked songs to generate")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds added per API call")
    parser.add_argument("--client-id", default=DEMO_CLIENT_ID)
    parser.add_argument("--state-dir", default=None, help="keep library and tokens here")
    args = parser.parse_args(argv)
    sandbox = SpotifySandbox(
        tracks=args.tracks,
        seed=args.seed,
        client_id=args.client_id,
        state_dir=args.state_dir,
        port=args.port,
    )
    sandbox.faults.latency = args.latency
    stopped = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopped.set())
    with sandbox:
        print(f"SPOTIFY_ACCOUNTS_URL={sandbox.accounts_url}", flush=True)
        print(f"SPOTIFY_API_URL={sandbox.api_url}", flush=True)
        print(f"SPOTIFY_CLIENT_ID={sandbox.client_id}", flush=True)
        print(f"Redirect URIs: {', '.join(sandbox.redirect_uris)} (any port)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            stopped.wait()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
