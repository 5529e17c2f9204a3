"""Orders and users as plain data: the stable field names of ``--json``."""

from __future__ import annotations

from typing import Any

from golive.store.models import Order, User


def order_summary(order: Order) -> dict[str, Any]:
    return {
        "id": order.id,
        "project": order.project.name,
        "title": order.title,
        "state": order.state,
        "created_by": order.created_by.name,
        "created_at": order.created_at,
        "updated_at": order.updated_at,
        "services": [f"{i.service.name}@{i.branch}" for i in order.items],
    }


def order_detail(order: Order) -> dict[str, Any]:
    data = order_summary(order)
    data["items"] = [
        {
            "service": item.service.name,
            "branch": item.branch,
            "statements": [
                {"position": s.position, "checksum": s.checksum, "text": s.text}
                for s in item.statements
            ],
            "jobs": [{"name": j.name, "kind": j.kind, "spec": j.spec} for j in item.jobs],
        }
        for item in order.items
    ]
    data["history"] = [
        {"at": h.at, "actor": h.actor, "action": h.action, "from": h.from_state,
         "to": h.to_state, "reason": h.reason}
        for h in order.history
    ]
    return data


def user_view(user: User) -> dict[str, Any]:
    return {
        "name": user.name, "display_name": user.display_name, "email": user.email,
        "mobile": user.mobile, "language": user.language, "is_admin": user.is_admin,
        "wecom_id": user.wecom_id, "dingtalk_id": user.dingtalk_id,
        "feishu_id": user.feishu_id,
    }
