"""Everything that talks to Spotify: the accounts service (auth) and the Web API (library)."""
