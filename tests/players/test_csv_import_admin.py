"""The dashboard's "Import players from CSV": owners and admins, into their own apps only, with the
import's progress and refused rows on its page."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile

from apps.models import Membership
from players.import_services import csv_import_run
from players.models import CsvImport, Player

pytestmark = pytest.mark.django_db

URL = "/admin/players/player/import-csv/"
CSV = b"identifier,device_type,session_count\ntok-1,1,3\ntok-2,1,x\n"


@pytest.fixture(autouse=True)
def _media(settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path)


def _login(client, tenant, role, name=None):
    user = get_user_model().objects.create_user(name or f"u-{role}", password="pw", is_staff=True)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="players"))
    Membership.objects.create(organization=tenant.organization, user=user, role=role)
    client.force_login(user)
    return user


def test_a_viewer_sees_no_import_button_and_cannot_import(client, own):
    _login(client, own, Membership.Role.VIEWER)
    page = client.get("/admin/players/player/").content.decode()
    assert "Import players from CSV" not in page
    assert client.get(URL).status_code == 403
    response = client.post(URL, {"app": own.app.pk, "file": SimpleUploadedFile("p.csv", CSV)})
    assert response.status_code == 403
    assert not CsvImport.objects.exists()


def test_an_admin_imports_into_an_app_of_their_organization(client, own, outsider):
    user = _login(client, own, Membership.Role.ADMIN)
    page = client.get("/admin/players/player/").content.decode()
    assert "Import players from CSV" in page and URL in page
    form = client.get(URL).content.decode()
    assert own.app.name in form and outsider.app.name not in form  # only the user's own apps

    response = client.post(URL, {"app": own.app.pk, "file": SimpleUploadedFile("players.csv", CSV)})
    job = CsvImport.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/admin/players/csvimport/{job.pk}/change/"
    assert (job.app, job.created_by, job.file_name, job.status) == (own.app, user, "players.csv", "pending")

    pending = client.get(response["Location"]).content.decode()
    assert "Status:</strong> pending" in pending and "refreshes every 3 seconds" in pending

    csv_import_run(import_id=str(job.id))
    done = client.get(response["Location"]).content.decode()
    assert "Status:</strong> completed" in done and "2 rows processed" in done and "1 created" in done
    assert "refreshes every" not in done
    assert "session_count must be a whole number from 0 to 2147483647 (got &#x27;x&#x27;)" in done
    assert Player.objects.get(app=own.app).session_count == 3


def test_another_tenants_app_cannot_be_chosen(client, own, outsider):
    _login(client, own, Membership.Role.OWNER)
    response = client.post(URL, {"app": outsider.app.pk, "file": SimpleUploadedFile("p.csv", CSV)})
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not CsvImport.objects.exists()


def test_a_bad_header_is_shown_on_the_form(client, own):
    _login(client, own, Membership.Role.OWNER)
    response = client.post(URL, {"app": own.app.pk, "file": SimpleUploadedFile("p.csv", b"name,age\n")})
    assert response.status_code == 200
    assert "Unknown column &#x27;name&#x27; in the header" in response.content.decode()
    assert not CsvImport.objects.exists()


def test_an_import_page_of_another_organization_is_not_shown(client, own, outsider):
    _login(client, outsider, Membership.Role.OWNER, name="them")
    client.post(URL, {"app": outsider.app.pk, "file": SimpleUploadedFile("p.csv", CSV)})
    theirs = CsvImport.objects.get()
    client.logout()
    _login(client, own, Membership.Role.OWNER)
    assert client.get(f"/admin/players/csvimport/{theirs.pk}/change/").status_code in (302, 404)
    client.get("/admin/players/csvimport/")  # shows (and so clears) the "doesn't exist" message
    listing = client.get("/admin/players/csvimport/").content.decode()
    assert str(theirs.pk) not in listing and outsider.app.name not in listing and "0 CSV imports" in listing
