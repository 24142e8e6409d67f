from django.apps import AppConfig


class CoreConfig(AppConfig):
    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from core.logs import connect_celery_signals

        connect_celery_signals()  # task id and notification id on every line a task logs
