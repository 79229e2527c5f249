"""The log lines a client sees (window/logMessage) never carry a traceback."""

from __future__ import annotations

import logging
import sys

from lsp_server.server import client_text


def _record(message: str, exc: bool) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError("Command name '' is not defined\nmore detail")
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("pygls.protocol", logging.ERROR, __file__, 1, message, (), info)


def test_an_exception_is_summed_up_in_one_line() -> None:
    text = client_text(_record("Exception occurred for message 9", exc=True))
    assert text == (
        "pygls.protocol: Exception occurred for message 9 "
        "(ValueError: Command name '' is not defined)"
    )


def test_a_traceback_formatted_into_the_message_is_cut_off() -> None:
    message = (
        "Unable to deserialize message\n  + Exception Group Traceback (most recent call last):"
        '\n  |   File "/x/json_rpc.py", line 468'
    )
    assert client_text(_record(message, exc=False)) == (
        "pygls.protocol: Unable to deserialize message"
    )
