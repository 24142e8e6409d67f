from django.db import migrations, models
from django.db.models import Q


def website_push_ids_from_subjects(apps, schema_editor):
    """Apps that already hold a Safari certificate: its Website Push ID is the UID in the stored
    subject summary (RFC 4514, ``UID=web.com.example,CN=...``), so no secret is decrypted."""
    App = apps.get_model("apps", "App")
    for app in App.objects.filter(~Q(safari_apns_certificate_subject=None)).only(
        "pk", "safari_apns_certificate_subject"
    ):
        for part in app.safari_apns_certificate_subject.split(","):
            name, _, value = part.partition("=")
            if name.strip().upper() == "UID" and value.startswith("web."):
                App.objects.filter(pk=app.pk).update(safari_push_id=value[:200])
                break


class Migration(migrations.Migration):
    dependencies = [
        ("apps", "0003_huawei_adm_credentials"),
    ]

    operations = [
        migrations.AddField(
            model_name="app",
            name="safari_push_id",
            field=models.CharField(blank=True, editable=False, max_length=200, null=True),
        ),
        migrations.RunPython(website_push_ids_from_subjects, migrations.RunPython.noop),
    ]
