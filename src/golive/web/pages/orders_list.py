"""The list of orders: newest first, filtered by project and state."""

from __future__ import annotations

from fastapi.responses import Response

from golive.web.page import Page, page


@page("/orders")
def order_list(p: Page) -> Response:
    project = p.request.query_params.get("project", "")
    state = p.request.query_params.get("state", "")
    orders = p.read("order.list", project=project, state=state, limit=200)
    projects = [row["name"] for row in p.read("project.list")]
    return p.render("orders_list.html", orders=list(reversed(orders)), projects=projects,
                    project=project, state=state)
