"""Shared fixtures: real CSMS servers on 127.0.0.1 and real TLS certificates.

A test whose fleet and CSMS both run in its own trio run (no thread, no child process) takes
pytest-trio's `autojump_clock`: time then passes only when every task waits, so counts and
latencies are what the code makes of the clock, whatever the machine's speed or load. (A write
to a loopback socket reaches its peer before the write returns, so the clock does not jump
over a frame in flight.) Tests that measure the generator's own delay, or talk to a thread or
another process, keep the real clock and assert only what holds on a loaded machine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import attrs
import pytest
import trio
import trustme

from fleetsim import CsmsConfig, CsmsServer, serve_csms


@attrs.frozen
class TlsFiles:
    ca_file: str
    cert_file: str
    key_file: str


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A throwaway CA and a server certificate for 127.0.0.1 and localhost, as PEM files."""
    directory: Path = tmp_path_factory.mktemp("tls")
    ca = trustme.CA()
    server = ca.issue_cert("127.0.0.1", "localhost")
    ca.cert_pem.write_to_path(str(directory / "ca.pem"))
    server.cert_chain_pems[0].write_to_path(str(directory / "cert.pem"))
    for pem in server.cert_chain_pems[1:]:
        pem.write_to_path(str(directory / "cert.pem"), append=True)
    server.private_key_pem.write_to_path(str(directory / "key.pem"))
    return TlsFiles(str(directory / "ca.pem"), str(directory / "cert.pem"),
                    str(directory / "key.pem"))


async def start_csms(nursery: trio.Nursery, **options: object) -> CsmsServer:
    server: CsmsServer = await nursery.start(serve_csms, CsmsConfig(port=0, **options))  # type: ignore[arg-type]
    return server


@pytest.fixture
async def csms(nursery: trio.Nursery) -> AsyncIterator[CsmsServer]:
    """The embedded CSMS, in this test's trio run, on a free loopback port."""
    yield await start_csms(nursery)
