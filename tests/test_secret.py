"""A Secret never shows its value except through reveal()."""

import logging
import pickle

import pytest

from favdesk.secret import Secret


def test_secret_is_masked_in_repr_str_format_and_logs(caplog):
    token = Secret("BQD-very-secret-token")
    logging.getLogger("favdesk.test").warning("token %s %r", token, token)
    shown = [repr(token), str(token), f"{token}", f"{token:>40}", caplog.text]
    assert all("very-secret" not in text for text in shown)
    assert token.reveal() == "BQD-very-secret-token"


def test_secret_refuses_to_be_pickled_into_a_job_payload():
    with pytest.raises(TypeError, match="keyring"):
        pickle.dumps(Secret("x"))
