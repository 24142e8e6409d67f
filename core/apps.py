from django.apps import AppConfig
from django.db.models.signals import post_delete, post_save


class CoreConfig(AppConfig):
    name = "core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from apps.models import App
        from core.api.appcache import app_changed
        from core.logs import connect_celery_signals

        connect_celery_signals()  # task id and notification id on every line a task logs
        # The per-process cache of Apps for SDK calls forgets an app when it changes.
        post_save.connect(app_changed, sender=App, dispatch_uid="core.appcache.save")
        post_delete.connect(app_changed, sender=App, dispatch_uid="core.appcache.delete")
