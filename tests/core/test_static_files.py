"""The dashboard's static files are served by the web process (WhiteNoise), never from a CDN."""

from __future__ import annotations


def test_admin_static_files_are_served_by_the_web_process(client):
    response = client.get("/static/admin/css/base.css")
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    assert b"body" in body and response["Content-Type"].startswith("text/css")


def test_unknown_static_file_is_not_found(client):
    assert client.get("/static/admin/css/nope.css").status_code == 404
