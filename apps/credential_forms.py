"""The dashboard's platform-credentials page: uploads go through ``apps.services.app_update``,
the same validation as ``PUT /apps/{id}``, and nothing secret is ever rendered back."""

from __future__ import annotations

import base64
import json
from typing import Any

from django import forms

from core.api import limits

SECRET_INPUT = forms.PasswordInput(render_value=False)


def _text(label: str, help_text: str, *, rows: int = 4) -> forms.CharField:
    return forms.CharField(
        label=label,
        required=False,
        strip=False,
        widget=forms.Textarea(attrs={"rows": rows}),
        help_text=help_text,
    )


class PlatformCredentialsForm(forms.Form):
    """Every field is optional and write-only: a blank field keeps what is stored."""

    apns_p8 = _text("APNs token key (.p8)", "Paste the PEM text of the AuthKey_XXXX.p8 file.")
    apns_p12 = forms.FileField(label="APNs certificate (.p12)", required=False)
    apns_p12_password = forms.CharField(label="APNs .p12 password", required=False, widget=SECRET_INPUT)
    safari_apns_p12 = forms.FileField(label="Safari certificate (.p12)", required=False)
    safari_apns_p12_password = forms.CharField(
        label="Safari .p12 password", required=False, widget=SECRET_INPUT
    )
    fcm_v1_service_account_json = forms.FileField(label="FCM service account (.json)", required=False)
    wns_client_secret = forms.CharField(label="WNS client secret", required=False, widget=SECRET_INPUT)
    smtp_password = forms.CharField(label="SMTP password", required=False, widget=SECRET_INPUT)
    sms_gateway = _text("SMS gateway (JSON)", 'e.g. {"host": "sms.example.com", "port": 443, ...}', rows=3)

    def api_data(self) -> dict[str, Any]:
        """The ``PUT /apps/{id}`` fields this submission sets (blank fields are left out)."""
        data: dict[str, Any] = {}
        cleaned = self.cleaned_data
        if cleaned.get("apns_p8"):
            data["apns_p8"] = cleaned["apns_p8"]
        for prefix in ("apns", "safari_apns"):
            upload = cleaned.get(f"{prefix}_p12")
            if upload:
                data[f"{prefix}_p12"] = base64.b64encode(upload.read()).decode()
                data[f"{prefix}_p12_password"] = cleaned.get(f"{prefix}_p12_password") or None
        upload = cleaned.get("fcm_v1_service_account_json")
        if upload:
            data["fcm_v1_service_account_json"] = upload.read().decode("utf-8", "replace")
        for name in ("wns_client_secret", "smtp_password"):
            if cleaned.get(name):
                data[name] = cleaned[name]
        if (cleaned.get("sms_gateway") or "").strip():
            try:
                data["sms_gateway"] = limits.loads(cleaned["sms_gateway"])
            except json.JSONDecodeError as exc:
                raise forms.ValidationError({"sms_gateway": f"Invalid JSON: {exc.msg}"}) from exc
        return data
