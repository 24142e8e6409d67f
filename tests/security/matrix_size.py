"""Print the size of the tenant-isolation matrices (RELIABILITY.md quotes it):

    DJANGO_SETTINGS_MODULE=config.settings.test .venv/bin/python -m tests.security.matrix_size

Counted from the same URLconf walk and matrix entries the tests use, without a database.
"""

from __future__ import annotations

from types import SimpleNamespace

import django


def main() -> None:
    django.setup()
    from django.contrib import admin

    from tests.security import test_isolation_admin as dashboard
    from tests.security import test_isolation_imfpush as mfp
    from tests.security import test_isolation_onesignal as onesignal

    world = SimpleNamespace(
        tenant=SimpleNamespace(user_key="u", app_key="a"),
        ids={"app": "a"},
        revoked_user_key="r",
        revoked_app_key="r",
    )
    routes = onesignal.routes_by_name()
    pairs = [(name, method) for name, rs in routes.items() for method in rs[0].methods()]
    cases = sum(
        len(
            onesignal.cases_for(
                onesignal.MATRIX[n][m], world, world, SimpleNamespace(app_key="t"), legacy=True
            )
        )
        + 1
        for n, m in pairs
    )
    patterns = sum(len(rs) for rs in routes.values())
    print(
        f"OneSignal surface: {len(routes)} routes ({patterns} URL patterns: 2 roots x 2 slash forms), "
        f"{len(pairs)} route-methods, {cases} cases per spelling (own + refusals), "
        f"{cases * 4} requests over every spelling ({cases} in make test)"
    )

    routes = mfp.routes_by_name()
    pairs = [(n, m) for n, rs in routes.items() if n not in mfp.PUBLIC for m in mfp.methods_of(rs[0])]
    cases = 0
    for name, method in pairs:
        op = mfp.MATRIX[name][method]
        scope = routes[name][0].view_class.requirements[method].scope
        refusals = ["other_key", "other_app", "app_scope", "no_key", "revoked_key"]
        refusals += ["read_only"] if scope.endswith(".write") else []
        refusals += ["other_object"] if op.other_object is not None else []
        cases += 1 + len([r for r in refusals if r not in op.not_applicable])
    print(
        f"/imfpush/v1: {len(routes)} routes ({len(mfp.PUBLIC)} public), {len(pairs)} operations, "
        f"{cases} cases (own + refusals)"
    )

    urls = dashboard.admin_urls()
    custom = [u for u in urls if u[2] == "custom"]
    print(
        f"Dashboard: {len(admin.site._registry)} ModelAdmins, {len(urls)} named URLs "
        f"({len(custom)} custom views), {len(dashboard.autocomplete_fields())} autocomplete fields, "
        "personas: owner (the valid form), outsider staff, same-organization viewer"
    )


if __name__ == "__main__":
    main()
