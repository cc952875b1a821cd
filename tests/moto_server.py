"""moto's server on loopback, started one way for the suites and the benches: percentiles taught
(tests/moto_percentiles.py), EC2 without its AMI catalogue (a reset is about 20x faster), request logging off."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
from moto.server import ThreadedMotoServer

from tests.moto_percentiles import taught


@contextmanager
def serving() -> Iterator[str]:
    """Yield the endpoint URL of a fresh moto server; stop it afterwards."""
    logging.getLogger("werkzeug").setLevel(logging.CRITICAL)  # moto logs every request and its 500s
    with pytest.MonkeyPatch.context() as patch, taught():
        patch.setenv("MOTO_EC2_LOAD_DEFAULT_AMIS", "false")
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        try:
            yield f"http://{host}:{port}"
        finally:
            server.stop()
