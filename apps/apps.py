from django.apps import AppConfig


class TenantAppsConfig(AppConfig):
    """The tenant app. Labelled explicitly so it never shadows ``django.apps`` in people's heads."""

    name = "apps"
    label = "apps"
    verbose_name = "Organizations and apps"
    default_auto_field = "django.db.models.BigAutoField"
