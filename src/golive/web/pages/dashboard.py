"""The dashboard: the orders waiting for me (by my roles), my orders, the recent
deployments with their results, and the lane board — all from ``dashboard.show``."""

from __future__ import annotations

from fastapi.responses import Response

from golive.web.i18n import N_
from golive.web.page import Page, page

DUTIES = {
    "test": N_("test it: pass or reject"),
    "deploy": N_("deploy it"),
    "release": N_("release it"),
    "approve_sql": N_("approve its SQL"),
    "resolve_sql": N_("resolve an interrupted statement"),
    "resume": N_("let the paused deployment go on"),
    "submit": N_("submit it"),
    "fix": N_("fix and redeploy"),
}
"""What the order waits for me to do, by the duty ``domain.offers.waiting`` names."""


@page("/")
def dashboard(p: Page) -> Response:
    found = p.read("dashboard.show")
    return p.render("dashboard.html", waiting=found["waiting"], mine=found["mine"],
                    deployments=found["deployments"], boards=found["board"], duties=DUTIES)
