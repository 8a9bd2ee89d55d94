"""`cyberslm eval download` against a local http.server standing in for the raw-file host."""

import functools
import threading
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

import pytest
from typer.testing import CliRunner

from cyberslm.errors import CyberslmError
from cyberslm.eval.cli import app
from cyberslm.eval.download import FILES, download
from cyberslm.eval.tasks import TASKS


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture()
def repo_server(tmp_path, fixtures_dir):
    """A folder laid out like the cti-bench repository, served over loopback HTTP."""
    root = tmp_path / "repo"
    for name, remote in FILES.items():
        target = root / remote
        target.parent.mkdir(parents=True, exist_ok=True)
        source = fixtures_dir / ("cti-taa-gt.tsv" if name == "cti-taa-responses.tsv" else name)
        target.write_bytes(source.read_bytes())
    server = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(QuietHandler, directory=str(root)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield root, f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    server.server_close()


def test_download_fetches_every_file(repo_server, tmp_path):
    root, base = repo_server
    dest = tmp_path / "cti-bench"
    result = CliRunner().invoke(app, ["download", "--dest", str(dest), "--base-url", base])
    assert result.exit_code == 0, result.output
    for name, remote in FILES.items():
        assert (dest / name).read_bytes() == (root / remote).read_bytes()
    assert not list(dest.glob("*.part"))
    assert len(TASKS["cti-taa"].load(dest)) == 3  # GT read from cti-taa-responses.tsv


def test_download_missing_file_is_clear_error(repo_server, tmp_path):
    root, base = repo_server
    (root / "data" / "cti-vsp.tsv").unlink()
    with pytest.raises(CyberslmError, match=r"data/cti-vsp.tsv: download failed"):
        download(tmp_path / "out", base)
