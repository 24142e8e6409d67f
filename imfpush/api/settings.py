"""``/apps/{applicationId}/settings…``: the App's platform credentials through MFP (§3.2).

The views only parse and answer; ``imfpush.configuration`` reads and writes the App fields the
OneSignal API uses too.
"""

from __future__ import annotations

from django.http import HttpResponse
from rest_framework import exceptions as drf_exceptions
from rest_framework import status
from rest_framework.parsers import MultiPartParser
from rest_framework.response import Response

from imfpush import configuration
from imfpush.api.base import MfpAppView
from imfpush.errors import CONFIG_NOT_FOUND, MfpError
from imfpush.scopes import Requirement

DEFAULT_CERTIFICATE_NAME = "apns-certificate.p12"


def _not_configured(name: str) -> MfpError:
    return MfpError(404, "FPWSE0003E", CONFIG_NOT_FOUND, params={"name": name})


def _found(body: dict | None, name: str) -> Response:
    if body is None:
        raise _not_configured(name)
    return Response(body)


def _deleted() -> Response:
    return Response(status=status.HTTP_204_NO_CONTENT)


class SettingsView(MfpAppView):
    """Links to the four platform configurations, whether they are set or not."""

    requirements = {"GET": Requirement("settings.read")}

    def get(self, request, *args, **kwargs):
        return Response(configuration.settings_links(self.href, self.application_id))


class ApnsConfView(MfpAppView):
    """APNs certificate (.p12). PUT is multipart/form-data: ``certificate``, ``password``, ``isSandBox``."""

    requirements = {
        "GET": Requirement("apnsConf.read"),
        "PUT": Requirement("apnsConf.write"),
        "DELETE": Requirement("apnsConf.write"),
    }
    multipart_methods = ("PUT",)
    parser_classes = [MultiPartParser]

    def get(self, request, *args, **kwargs):
        return _found(configuration.apns_conf(self.mfp_application, self.app), "apnsConf")

    def put(self, request, *args, **kwargs):
        try:
            fields, files = request.data, request.FILES
        except drf_exceptions.ParseError as exc:
            raise MfpError.invalid("certificate", "the multipart/form-data body cannot be read") from exc
        upload = files.get("certificate")
        if upload is None:
            raise MfpError.invalid("certificate", "a .p12 file is required")
        body = configuration.apns_conf_set(
            record=self.mfp_application,
            certificate=upload.read(),
            file_name=upload.name or DEFAULT_CERTIFICATE_NAME,
            password=fields.get("password") or "",
            is_sandbox=configuration.as_boolean(fields.get("isSandBox"), "isSandBox", False),
        )
        return Response(body)

    def delete(self, request, *args, **kwargs):
        configuration.apns_conf_delete(record=self.mfp_application)
        return _deleted()


class ApnsCertView(MfpAppView):
    """The public X.509 certificate of the APNs .p12, DER-encoded (never the private key)."""

    requirements = {"GET": Requirement("apnsCert.read")}
    produces = "application/octet-stream"

    def get(self, request, *args, **kwargs):
        der = configuration.apns_certificate_der(self.app)
        if der is None:
            raise _not_configured("apnsConf")
        response = HttpResponse(der, content_type="application/octet-stream")
        response["Content-Disposition"] = 'attachment; filename="apns-certificate.der"'
        return response


class GcmConfView(MfpAppView):
    """FCM: ``senderId`` plus ``apiKey`` (redacted when read) and a write-only ``serviceAccount``."""

    requirements = {
        "GET": Requirement("gcmConf.read"),
        "PUT": Requirement("gcmConf.write", aliases=("apnsConf.write",)),
        "DELETE": Requirement("gcmConf.write"),
    }

    def get(self, request, *args, **kwargs):
        return _found(configuration.gcm_conf(self.app), "gcmConf")

    def put(self, request, *args, **kwargs):
        return Response(configuration.gcm_conf_set(record=self.mfp_application, body=self.body_object()))

    def delete(self, request, *args, **kwargs):
        configuration.gcm_conf_delete(record=self.mfp_application)
        return _deleted()


class GcmConfPublicView(MfpAppView):
    """The sender id a device needs before it registers."""

    requirements = {"GET": Requirement("gcmConfPublic.read", mobile_client=True)}

    def get(self, request, *args, **kwargs):
        return _found(configuration.gcm_conf_public(self.app), "gcmConf")


class WnsConfView(MfpAppView):
    """WNS: ``clientSecret`` (redacted when read) and ``packageSID``."""

    requirements = {
        "GET": Requirement("wnsConf.read"),
        "PUT": Requirement("wnsConf.write"),
        "DELETE": Requirement("wnsConf.write"),
    }

    def get(self, request, *args, **kwargs):
        return _found(configuration.wns_conf(self.app), "wnsConf")

    def put(self, request, *args, **kwargs):
        return Response(configuration.wns_conf_set(record=self.mfp_application, body=self.body_object()))

    def delete(self, request, *args, **kwargs):
        configuration.wns_conf_delete(record=self.mfp_application)
        return _deleted()


class SmsConfView(MfpAppView):
    """The HTTP SMS gateway: ``host``, ``port``, ``programName``, ``name``, ``parameters``."""

    requirements = {
        "GET": Requirement("smsConf.read"),
        "PUT": Requirement("smsConf.write"),
        "DELETE": Requirement("smsConf.write"),
    }

    def get(self, request, *args, **kwargs):
        return _found(configuration.sms_conf(self.app), "smsConf")

    def put(self, request, *args, **kwargs):
        return Response(configuration.sms_conf_set(record=self.mfp_application, body=self.body_object()))

    def delete(self, request, *args, **kwargs):
        configuration.sms_conf_delete(record=self.mfp_application)
        return _deleted()
