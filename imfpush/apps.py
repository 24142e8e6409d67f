from django.apps import AppConfig


class ImfpushConfig(AppConfig):
    name = "imfpush"
    verbose_name = "MobileFirst Push (/imfpush/v1)"
    default_auto_field = "django.db.models.BigAutoField"
