"""The agents: which zone each serves, whether it lives, what it runs now."""

from __future__ import annotations

from fastapi.responses import Response

from golive.web.i18n import N_
from golive.web.i18n import gettext as _
from golive.web.page import Page, page

STATES = {"alive": N_("alive"), "lost": N_("lost"), "stopped": N_("stopped")}
STATE_COLORS = {"alive": "ok", "lost": "bad", "stopped": "mute"}


@page("/agents")
def agent_list(p: Page) -> Response:
    agents = p.read("agent.list")
    return p.render("agents.html", agents=agents, colors=STATE_COLORS,
                    states={key: _(label) for key, label in STATES.items()})
