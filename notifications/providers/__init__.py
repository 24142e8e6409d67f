"""Gateway providers, one module each, behind ``notifications.providers.base.Provider``."""

from __future__ import annotations

from importlib import import_module

from notifications.providers.base import Provider, ProviderNotConfigured

# platform -> "module:Class": every gateway Herald delivers to.
PROVIDERS = {
    "fcm": "notifications.providers.fcm:FcmProvider",
    "email": "notifications.providers.email:EmailProvider",
    "sms": "notifications.providers.sms:SmsProvider",
    "wns": "notifications.providers.wns:WnsProvider",
    "apns": "notifications.providers.apns:ApnsProvider",
    "webpush": "notifications.providers.webpush:WebPushProvider",
    # Device type 7: Web Push (Safari 16+) or legacy APNs website push, chosen per player.
    "safari": "notifications.providers.safari:SafariProvider",
    "hms": "notifications.providers.hms:HmsProvider",
    "adm": "notifications.providers.adm:AdmProvider",
}


def provider_for(platform: str | None, app) -> Provider:
    path = PROVIDERS.get(platform or "")
    if path is None:
        raise ProviderNotConfigured(f"no provider delivers {platform or 'this device type'} yet")
    module, _, name = path.partition(":")
    return getattr(import_module(module), name)(app)
