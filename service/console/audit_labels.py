"""How the audit page reads a record's details: Chinese names of the detail fields and of their values.

The values' names come from the product's one vocabulary (``service.vocabulary``) and the ledger's
transition table, so the audit page says 已签收 wherever the ticket list does; only the words that exist
nowhere else (the names of the detail fields, the refusal reasons) are written here. The page's script
shows them with textContent, as it shows everything it reads from the log.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from service.ledger.transitions import ACTION_LABELS
from service.vocabulary import (
    ALERT_STATE_LABELS,
    CHANNEL_LABELS,
    RESPONSE_TYPE_LABELS,
    ROLE_LABELS,
    SEVERITY_LABELS,
    STAGE_LABELS,
    TICKET_STATUS_LABELS,
)

# The detail fields the product writes (service/*/api.py, auth, oversight), by name.
FIELD_NAMES: Mapping[str, str] = {
    "action": "动作",
    "alert_id": "预警",
    "attempts": "失败次数",
    "before": "早于",
    "by": "操作人",
    "channel": "渠道",
    "current": "当前版本",
    "deadlines": "时限",
    "deadlines_before": "原时限",
    "deleted": "删除条数",
    "department": "部门",
    "enabled": "启用",
    "escalated": "已督办",
    "expr": "表达式",
    "from": "原值",
    "from_department": "原部门",
    "from_status": "原状态",
    "from_ticket": "原工单",
    "id": "编号",
    "into": "并入工单",
    "item": "条目",
    "item_id": "条目",
    "items": "条目",
    "merged": "并入的工单",
    "method": "请求方法",
    "new_ticket": "新工单",
    "new_version": "新版本",
    "objects": "查看的内容",
    "path": "路径",
    "q": "检索词",
    "reason": "原因",
    "replied_at": "答复时间",
    "required": "所需角色",
    "response_type": "回应方式",
    "retention_days": "保留天数",
    "role": "角色",
    "rule_id": "规则",
    "severity": "严重程度",
    "source": "来源",
    "source_id": "来源",
    "sources": "被并入的工单",
    "stages": "环节",
    "start_urls": "起始地址",
    "state": "状态",
    "status": "状态",
    "structured": "结构化规则",
    "ticket_id": "工单",
    "to": "新值",
    "to_department": "新部门",
    "to_status": "新状态",
    "until": "截至",
    "username": "用户名",
    "version": "版本",
    **STAGE_LABELS,  # the keys of a deadlines mapping
}
# A field holding a mapping of the values before and after a change reads differently from a time bound.
OBJECT_FIELD_NAMES: Mapping[str, str] = {"before": "修改前", "after": "修改后"}

# Why something was refused: the codes the ledger, the login and the access checks write.
REASON_LABELS: Mapping[str, str] = {
    "not_found": "工单不存在或不可见",
    "role": "角色无权操作",
    "role_scope": "超出角色可见范围",
    "department": "不是本部门",
    "csrf": "CSRF 校验未通过",
    "stale_version": "版本已过期（工单已被他人更新）",
    "unknown user": "用户不存在",
    "bad password": "密码错误",
    "totp missing": "缺少动态口令",
    "bad totp": "动态口令错误",
    "inactive": "账号已停用",
    "too many attempts": "尝试次数过多",
}

_ACTIONS = {**ACTION_LABELS, "change_severity": "调整级别", "merge": "并单", "split": "拆单"}
_STATUSES = dict(TICKET_STATUS_LABELS)
_ROLES = dict(ROLE_LABELS)

# Which vocabulary the values of a field come from (the value is shown as written when it is in none).
VALUE_NAMES: Mapping[str, Mapping[str, str]] = {
    "action": _ACTIONS,
    "channel": dict(CHANNEL_LABELS),
    "from_status": _STATUSES,
    "reason": REASON_LABELS,
    "required": _ROLES,
    "response_type": dict(RESPONSE_TYPE_LABELS),
    "role": _ROLES,
    "severity": dict(SEVERITY_LABELS),
    "stages": dict(STAGE_LABELS),
    "state": dict(ALERT_STATE_LABELS),
    "status": _STATUSES,
    "to_status": _STATUSES,
}


def audit_labels() -> dict[str, Any]:
    """What the audit page's script needs to name the fields and values of a record's details."""
    return {"fields": dict(FIELD_NAMES), "object_fields": dict(OBJECT_FIELD_NAMES), "values": dict(VALUE_NAMES)}
