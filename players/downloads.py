"""Serves finished CSV exports. The URL carries a random token, as OneSignal's signed links do."""

from __future__ import annotations

import re

from django.http import FileResponse, JsonResponse

from core.api.base import parse_uuid
from players.exports import export_path
from players.models import CsvExport

_FILE_NAME = re.compile(
    r"^(users|history_sent|history_clicked|events)_(?P<token>[0-9a-f]{32})_\d{4}-\d{2}-\d{2}\.csv\.gz$"
)


def csv_export_download(request, app_id: str, file_name: str):
    match = _FILE_NAME.match(file_name)
    app_uuid = parse_uuid(app_id)
    export = (
        CsvExport.objects.filter(app_id=app_uuid, token=match["token"]).first()
        if match and app_uuid
        else None
    )
    if export is None or export.file_name != file_name:
        return JsonResponse({"errors": ["Not Found"]}, status=404)
    if export.status == CsvExport.Status.EXPIRED:
        return JsonResponse({"errors": ["This export has expired"]}, status=403)
    if export.status == CsvExport.Status.FAILED:
        return JsonResponse({"errors": ["This export failed; start a new one"]}, status=403)
    if export.status != CsvExport.Status.READY:
        return JsonResponse({"errors": ["This export is not ready yet; try again shortly"]}, status=403)
    path = export_path(export)
    if not path.exists():
        return JsonResponse({"errors": ["This export has expired"]}, status=403)
    return FileResponse(
        path.open("rb"), as_attachment=True, filename=file_name, content_type="application/gzip"
    )
