"""Redis clients: URLs, descriptions without secrets, TLS verification, errors a user can act on."""

from __future__ import annotations

import socket
import subprocess
import time

import pytest
import redis

from favdesk import redisconn
from favdesk.errors import RedisUnavailable
from favdesk.rq_worker import EmbeddedWorker
from favdesk.secret import Secret
from tests.jobs import CommandMeter
from tests.support.net import closed_port


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://127.0.0.1:6379/0", "127.0.0.1:6379 db 0"),
        ("redis://:hunter2@cache.lan:6380/3", "cache.lan:6380 db 3"),
        ("redis://localhost", "localhost:6379 db 0"),
        (
            "rediss://default:AXyzTOKEN@eu1-fine-cat.upstash.io:6379",
            "TLS eu1-fine-cat.upstash.io:6379 db 0",
        ),
        ("unix:///x/redis.sock?db=0", "unix socket /x/redis.sock db 0"),
        ("unix://:hunter2@/x/redis.sock?db=2", "unix socket /x/redis.sock db 2"),
        ("redis://[::1]:7000/1", "[::1]:7000 db 1"),
    ],
)
def test_describe_names_the_place_and_never_the_password(url, expected):
    assert redisconn.describe(url) == expected
    assert redisconn.describe(Secret(url)) == expected
    assert redisconn.describe_client(redisconn.connect(url)) == expected


def test_client_is_quiet_and_bounded():
    conn = redisconn.connect(Secret("rediss://default:AXyzTOKEN@eu1-fine-cat.upstash.io:6379"))
    kwargs = conn.connection_pool.connection_kwargs
    assert kwargs["health_check_interval"] == 0  # PINGs are billed
    assert kwargs["socket_timeout"] == 5 and kwargs["socket_connect_timeout"] == 5
    assert kwargs.get("decode_responses", False) is False
    assert kwargs.get("ssl_cert_reqs", "required") == "required"
    assert "AXyzTOKEN" not in repr(conn)


def test_unknown_scheme_is_refused():
    with pytest.raises(RedisUnavailable, match="redis://, rediss:// or unix://"):
        redisconn.connect("http://127.0.0.1:6379")


def test_server_info_against_a_real_server(redis_url):
    conn = redisconn.connect(redis_url)
    info = redisconn.server_info(conn)
    assert info.version == conn.info("server")["redis_version"]


def test_server_info_costs_one_command(private_redis):
    conn = redisconn.connect(private_redis.url)
    conn.ping()  # connection handshake (HELLO) out of the way
    meter = CommandMeter(redisconn.connect(private_redis.url))
    redisconn.server_info(conn)
    assert meter.delta() == {"info": 1}


def test_unreachable_server_fails_fast_with_where_and_what_to_do():
    conn = redisconn.connect(f"redis://:s3cretpass@127.0.0.1:{closed_port()}/0")
    started = time.monotonic()
    with pytest.raises(RedisUnavailable) as caught:
        redisconn.server_info(conn)
    assert time.monotonic() - started < 3
    message = str(caught.value)
    assert "127.0.0.1:" in message and "REDIS_URL" in message
    assert "s3cretpass" not in message


def test_wrong_password_says_so_without_showing_it(private_redis):
    admin = redisconn.connect(private_redis.url)
    admin.config_set("requirepass", "right-one")
    path = private_redis.socket_path
    conn = redisconn.connect(f"unix://:wrong-guess@{path}?db=0")
    with pytest.raises(RedisUnavailable, match="refused the credentials") as caught:
        redisconn.server_info(conn)
    assert "wrong-guess" not in str(caught.value) and "right-one" not in str(caught.value)
    assert redisconn.server_info(redisconn.connect(f"unix://:right-one@{path}?db=0")).version


def test_worker_client_is_separate_so_rq_cannot_slow_the_app_client(redis_url):
    app = redisconn.connect(redis_url)
    worker_conn = redisconn.connect(redis_url, for_worker=True)
    EmbeddedWorker(connection=worker_conn)
    assert worker_conn.connection_pool.connection_kwargs["socket_timeout"] > 60  # RQ raised it
    assert app.connection_pool.connection_kwargs["socket_timeout"] == 5


@pytest.fixture
def tls_redis(tmp_path):
    """A redis-server speaking TLS only, with a self-signed certificate for 127.0.0.1."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-keyout", str(key), "-out", str(cert), "-subj", "/CN=127.0.0.1",
         "-addext", "subjectAltName=IP:127.0.0.1"],
        check=True, capture_output=True,
    )  # fmt: skip
    port = closed_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", str(cert),
         "--tls-key-file", str(key), "--tls-auth-clients", "no", "--save", "",
         "--appendonly", "no", "--dir", str(tmp_path)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            break
        except OSError:
            time.sleep(0.02)
    yield port, cert
    server.terminate()
    server.wait(timeout=10)


def test_tls_certificates_are_verified(tls_redis):
    port, cert = tls_redis
    with pytest.raises(RedisUnavailable, match="certificate verify failed") as refused:
        redisconn.server_info(redisconn.connect(f"rediss://127.0.0.1:{port}/0"))
    assert "add ?ssl_ca_certs=/path/to/ca.pem" in str(refused.value)  # what to do
    trusted = redisconn.connect(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}")
    assert redisconn.server_info(trusted).version
    assert redisconn.describe_client(trusted) == f"TLS 127.0.0.1:{port} db 0"


def test_redis_errors_other_than_connection_pass_through(redis_url):
    conn = redisconn.connect(redis_url)
    conn.set("a-string", "x")
    with pytest.raises(redis.ResponseError), redisconn.translated(conn):
        conn.lpush("a-string", "y")
