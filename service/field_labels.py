"""Chinese names of the API's input fields (query, path and body parameters), for messages people read.

One table for every route: a refusal says “每页条数（size）不能小于 1”, the Chinese words first and the
code the caller typed in brackets, so a user understands it and a developer finds the parameter.
tests/foundation/test_field_labels.py walks the OpenAPI schema, so a new parameter without a name here
fails there.
"""

from __future__ import annotations

from collections.abc import Mapping

FIELD_LABELS: Mapping[str, str] = {
    # Paging, filters and ranges of the list endpoints.
    "q": "检索词",
    "page": "页码",
    "size": "每页条数",
    "after": "起始位置",
    "before": "截止位置",
    "order": "排序",
    "from": "开始日期",
    "to": "结束日期",
    "channel": "渠道",
    "source": "来源",
    "department": "部门",
    "severity": "严重程度",
    "state": "状态",
    "status": "状态",
    "overdue": "是否超期",
    "event": "事件类型",
    "username": "用户名",
    "days": "天数",
    "format": "文件格式",
    "per_department": "按部门分表",
    # Path parameters.
    "alert_id": "预警编号",
    "rule_id": "规则编号",
    "source_id": "来源编号",
    "ticket_id": "工单编号",
    # Sign-in and accounts.
    "password": "密码",
    "current_password": "当前密码",
    "new_password": "新密码",
    "totp": "动态口令",
    "grant_type": "授权方式",
    "role": "角色",
    "active": "启用状态",
    # Rules.
    "id": "编号",
    "name": "名称",
    "expr": "规则表达式",
    "enabled": "启用",
    "regions": "地域词",
    "subjects": "主体词",
    "events": "事件词",
    "exclude": "排除词",
    "text": "测试文本",
    "title": "标题",
    "limit": "条数上限",
    "minutes": "分钟数",
    "until": "截止时间",
    # Ticket actions, merge and split.
    "action": "动作",
    "note": "说明",
    "result": "办理结果",
    "response_type": "回应方式",
    "response_url": "回应网址",
    "version": "版本号",
    "sources": "并入的工单",
    "item_id": "条目编号",
}


def field_label(name: str) -> str:
    """``每页条数（size）`` for a known field; the bare code for one the table does not know."""
    label = FIELD_LABELS.get(name)
    return f"{label}（{name}）" if label else name
