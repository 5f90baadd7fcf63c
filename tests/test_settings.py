"""Settings: names of the web app, precedence of the layers, and messages that say what to fix."""

from __future__ import annotations

from pathlib import Path

import keyring
import pytest

from favdesk.errors import SettingsError
from favdesk.settings import KEYRING_SERVICE, load_settings


def load(env: dict[str, str], cwd: Path, **kwargs):
    return load_settings({"FAVDESK_CONFIG_DIR": str(cwd / "config"), **env}, cwd, **kwargs)


def test_nothing_configured_means_demo_mode_with_embedded_services(tmp_path):
    settings = load({"FAVDESK_DATA_DIR": str(tmp_path / "d")}, tmp_path)
    assert settings.demo_mode
    assert settings.redis_url is None and settings.supabase_url is None
    assert settings.redirect_uri == "http://127.0.0.1/callback"
    assert settings.storage_dir == tmp_path / "d" / "storage"


def test_environment_wins_over_env_local_which_wins_over_env(tmp_path):
    (tmp_path / ".env").write_text("SPOTIFY_CLIENT_ID=from-env\nFAVDESK_USER_ID=u-env\n")
    (tmp_path / ".env.local").write_text("SPOTIFY_CLIENT_ID=from-env-local\n")
    settings = load({}, tmp_path)
    assert settings.spotify_client_id == "from-env-local"
    assert settings.user_id == "u-env"
    assert load({"SPOTIFY_CLIENT_ID": "from-process"}, tmp_path).spotify_client_id == "from-process"


def test_working_directory_files_win_over_config_dir_files(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / ".env").write_text("SPOTIFY_CLIENT_ID=cfg\nFAVDESK_USER_ID=cfg-user\n")
    (tmp_path / ".env").write_text("SPOTIFY_CLIENT_ID=cwd\n")
    settings = load({}, tmp_path)
    assert (settings.spotify_client_id, settings.user_id) == ("cwd", "cfg-user")


def test_a_config_dir_under_home_is_where_its_env_file_is_read(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    (tmp_path / "cfg").mkdir()
    (tmp_path / "cfg" / ".env").write_text("SPOTIFY_CLIENT_ID=saved\n")
    settings = load_settings({"FAVDESK_CONFIG_DIR": "~/cfg"}, tmp_path / "elsewhere")
    assert (settings.config_dir, settings.spotify_client_id) == (tmp_path / "cfg", "saved")


def test_upstash_url_preferred_over_redis_url_and_kept_secret(tmp_path):
    settings = load(
        {"UPSTASH_REDIS_URL": "rediss://default:tok3n@x.upstash.io:6379", "REDIS_URL": "redis://a"},
        tmp_path,
    )
    assert settings.redis_url.reveal().startswith("rediss://")
    assert "tok3n" not in repr(settings)


def test_supabase_settings_read_with_either_url_name(tmp_path):
    env = {"NEXT_PUBLIC_SUPABASE_URL": "http://127.0.0.1:54321/", "SUPABASE_SERVICE_ROLE_KEY": "k"}
    settings = load(env, tmp_path)
    assert settings.supabase_url == "http://127.0.0.1:54321"
    assert settings.supabase_service_role_key.reveal() == "k"
    hosted = {"SUPABASE_URL": "https://p.supabase.co", "SUPABASE_SERVICE_ROLE_KEY": "k"}
    other = load(hosted, tmp_path)
    assert other.supabase_url == "https://p.supabase.co"


@pytest.mark.parametrize(
    ("env", "variable", "hint"),
    [
        ({"REDIRECT_URI": "http://localhost:8888/callback"}, "REDIRECT_URI", "127.0.0.1/callback"),
        ({"REDIRECT_URI": "http://192.168.1.5/callback"}, "REDIRECT_URI", "loopback"),
        ({"REDIRECT_URI": "https://127.0.0.1/callback"}, "REDIRECT_URI", "loopback"),
        ({"REDIRECT_URI": "http://127.0.0.1:99999/callback"}, "REDIRECT_URI", "not a valid URL"),
        ({"SPOTIFY_API_URL": "ftp://x"}, "SPOTIFY_API_URL", "http(s) URL"),
        ({"REDIS_URL": "memcached://h:1"}, "REDIS_URL", "unknown scheme"),
        ({"UPSTASH_REDIS_URL": "upstash.io:6379"}, "UPSTASH_REDIS_URL", "rediss://"),
        ({"SUPABASE_URL": "https://p.co"}, "SUPABASE_SERVICE_ROLE_KEY", "service-role key"),
        ({"FAVDESK_USER_ID": "../etc"}, "FAVDESK_USER_ID", "letters, digits"),
        ({"FAVDESK_FETCH_CONCURRENCY": "0"}, "FAVDESK_FETCH_CONCURRENCY", "between 1 and 32"),
        ({"FAVDESK_WAIT_FOR_OTHER_JOBS": "maybe"}, "FAVDESK_WAIT_FOR_OTHER_JOBS", "yes/no"),
    ],
)
def test_bad_values_fail_early_naming_the_variable_and_the_fix(tmp_path, env, variable, hint):
    with pytest.raises(SettingsError) as caught:
        load(env, tmp_path)
    assert caught.value.variable == variable
    assert str(caught.value).startswith(f"{variable}: ")
    assert hint in str(caught.value)


@pytest.mark.parametrize(
    "url",
    [
        "rediss://default:SUPERSECRETTOKEN@host:63a79",
        "redis://:SUPERSECRETTOKEN@127.0.0.1:6379/x",
        "redis://:SUPERSECRETTOKEN@127.0.0.1:6379/?db=two",
        "redis://:SUPERSECRETTOKEN@:6379/0",
    ],
)
def test_a_bad_redis_url_is_refused_without_showing_its_password(tmp_path, url):
    with pytest.raises(SettingsError) as caught:
        load({"UPSTASH_REDIS_URL": url}, tmp_path)
    assert caught.value.variable == "UPSTASH_REDIS_URL"
    assert "SUPERSECRETTOKEN" not in str(caught.value)


def test_localhost_redirect_message_is_the_spotify_one(tmp_path):
    with pytest.raises(SettingsError, match="Spotify rejects localhost since 2025-11"):
        load({"REDIRECT_URI": "http://localhost/callback"}, tmp_path)


def test_secrets_saved_in_the_keyring_are_used_but_files_and_environment_win(tmp_path):
    keyring.set_password(KEYRING_SERVICE, "setting:SPOTIFY_CLIENT_SECRET", "from-keyring")
    keyring.set_password(KEYRING_SERVICE, "setting:UPSTASH_REDIS_URL", "redis://127.0.0.1:6390/2")
    settings = load({}, tmp_path)
    assert settings.spotify_client_secret.reveal() == "from-keyring"
    assert settings.redis_url.reveal() == "redis://127.0.0.1:6390/2"
    overridden = load({"SPOTIFY_CLIENT_SECRET": "from-env"}, tmp_path)
    assert overridden.spotify_client_secret.reveal() == "from-env"


def test_unusable_keyring_only_means_no_saved_secrets(tmp_path, monkeypatch):
    from keyring.backends import fail

    keyring.set_keyring(fail.Keyring())
    assert load({}, tmp_path).spotify_client_secret is None
