"""``python -m gatewaysim``: what it prints, its TLS material, how it stops, its record modes."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from urllib.parse import urlsplit

from cryptography import x509

from tests.gatewaysim.http2 import post_many
from tests.gatewaysim.simulator import PROJECT_DIR, Simulator, running_simulator


def test_it_prints_each_address_the_ca_and_the_ready_line(sim: Simulator):
    assert sim.output[-1] == "gatewaysim ready"
    assert urlsplit(sim.fcm_url).scheme == "https"
    assert urlsplit(sim.control_url).scheme == "http"
    assert urlsplit(sim.fcm_url).port != 0
    assert sim.ca_path.is_absolute()
    assert sim.ca_path == sim.state_dir / "ca.pem"


def test_the_fcm_port_offers_h2_and_http1_under_the_printed_ca(sim: Simulator):
    url = urlsplit(sim.fcm_url)
    for server_name in ("localhost", "127.0.0.1"):
        context = sim.ssl_context()
        context.set_alpn_protocols(["h2", "http/1.1"])
        with (
            socket.create_connection((url.hostname, url.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            assert tls.selected_alpn_protocol() == "h2"

        context = sim.ssl_context()
        context.set_alpn_protocols(["http/1.1"])
        with (
            socket.create_connection((url.hostname, url.port), timeout=5) as raw,
            context.wrap_socket(raw, server_hostname=server_name) as tls,
        ):
            assert tls.selected_alpn_protocol() == "http/1.1"


def test_a_restart_reuses_the_ca(tmp_path):
    with running_simulator(tmp_path) as first:
        ca = first.ca_path.read_bytes()
    with running_simulator(tmp_path) as second:
        assert second.ca_path.read_bytes() == ca
        certificate = x509.load_pem_x509_certificate(ca)
        assert certificate.extensions.get_extension_for_class(x509.BasicConstraints).value.ca


def test_sigterm_stops_it_cleanly(tmp_path):
    with running_simulator(tmp_path) as sim:
        assert sim.stop() == 0


def test_record_none_counts_but_keeps_no_deliveries(tmp_path):
    with running_simulator(tmp_path, "--record", "none") as sim:
        token = sim.fcm_access_token()
        body = json.dumps({"message": {"token": "device-1", "data": {"a": "b"}}}).encode()
        responses, _ = post_many(
            f"{sim.fcm_url}/v1/projects/demo/messages:send",
            [body] * 20,
            {"authorization": f"Bearer {token}"},
            sim.ca_path,
            in_flight=10,
        )

        assert {response.status for response in responses} == {200}
        assert sim.stats()["fcm"] == {"received": 20, "accepted": 20, "rejected": 0, "duplicates": 19}
        assert sim.deliveries() == []


def test_help_lists_the_options():
    done = subprocess.run(
        [sys.executable, "-m", "gatewaysim", "--help"],
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        check=True,
    )

    for option in ("--host", "--control-port", "--fcm-port", "--state-dir", "--record"):
        assert option in done.stdout


def test_a_busy_port_fails_with_a_clear_message(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "gatewaysim",
                "--fcm-port",
                str(port),
                "--control-port",
                "0",
                "--state-dir",
                str(tmp_path),
            ],
            cwd=PROJECT_DIR,
            capture_output=True,
            text=True,
            timeout=30,
        )

    assert done.returncode == 1
    assert "gatewaysim ready" not in done.stdout
    assert "Address already in use" in done.stderr
