"""favdesk: back up Spotify Liked Songs through a real job pipeline, and watch and steer it."""

__version__ = "0.1.0"
APP_ID = "io.github.favdesk.Favdesk"
APP_NAME = "favdesk"
