"""Logging: loguru for everything, with stdlib (Scrapy, uvicorn, SQLAlchemy) routed through it."""

from __future__ import annotations

import errno
import inspect
import logging
import re
import sys
import traceback
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loguru import logger

from service.masking import mask_text

if TYPE_CHECKING:
    from loguru import Record

_masker: list[Any] = []


class InterceptHandler(logging.Handler):
    """Send stdlib log records to loguru, keeping the original caller."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        message = record.getMessage()
        if record.name.startswith("uvicorn"):
            level, message = uvicorn_zh(record, level, message)
        frame, depth = inspect.currentframe(), 0
        while frame and (depth == 0 or frame.f_code.co_filename == logging.__file__):
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, message)


# uvicorn's own lines, keyed by its %-template (record.msg), in Chinese for the operator who reads the log.
# The same arguments fill ``{0}``, ``{1}``...; a line not listed here (a newer uvicorn's) passes unchanged.
UVICORN_ZH: dict[str, str] = {
    "Started server process [%d]": "服务进程已启动（进程号 {0}）",
    "Finished server process [%d]": "服务进程已结束（进程号 {0}）",
    "Uvicorn running on %s://%s:%d (Press CTRL+C to quit)": "服务已启动，监听 {0}://{1}:{2}（按 Ctrl+C 停止）",
    "Uvicorn running on %s://[%s]:%d (Press CTRL+C to quit)": "服务已启动，监听 {0}://[{1}]:{2}（按 Ctrl+C 停止）",
    "Uvicorn running on socket %s (Press CTRL+C to quit)": "服务已启动，监听套接字 {0}（按 Ctrl+C 停止）",
    "Uvicorn running on unix socket %s (Press CTRL+C to quit)": "服务已启动，监听 Unix 套接字 {0}（按 Ctrl+C 停止）",
    "Shutting down": "正在停止服务：不再接受新连接",
    "Waiting for connections to close. (CTRL+C to force quit)": "等待已打开的连接结束（再按 Ctrl+C 强制退出）",
    "Waiting for background tasks to complete. (CTRL+C to force quit)": "等待后台任务完成（再按 Ctrl+C 强制退出）",
    "Cancel %s running task(s), timeout graceful shutdown exceeded": "停止时等待超时，取消仍在处理的 {0} 个请求",
    "Maximum request limit of %d exceeded. Terminating process.": "已处理的请求数达到上限 {0}，进程退出",
    "Waiting for application startup.": "等待应用启动",
    "Application startup complete.": "应用启动完成",
    "Application startup failed. Exiting.": "应用启动失败，服务退出",
    "Waiting for application shutdown.": "等待应用停止",
    "Application shutdown complete.": "应用已停止",
    "Application shutdown failed. Exiting.": "应用停止失败，服务退出",
    "ASGI 'lifespan' protocol appears unsupported.": "应用不支持 ASGI lifespan 协议（启动与停止步骤不执行）",
    "Exception in 'lifespan' protocol\n": "应用启动或停止时出错（ASGI lifespan）：",
    "Exception in ASGI application\n": "处理请求时应用出错（未开始应答的回复 500，否则断开连接）：",
    "ASGI callable should return None, but returned '%s'.": "应用返回了意外的值 '{0}'（应为 None），已断开连接",
    "ASGI callable returned without starting response.": "应用未发出应答就结束了，已回复 500",
    "ASGI callable returned without completing response.": "应用未发完应答就结束了，已断开连接",
    "ASGI callable returned without sending handshake.": "应用未完成 WebSocket 握手就结束了",
    "ASGI callable returned without completing handshake.": "应用未完成 WebSocket 握手就结束了",
    "Invalid HTTP request received.": "收到无效的 HTTP 请求，已回复 400",
    "Invalid UTF-8 sequence received from client.": "客户端发来无效的 UTF-8 数据，已断开 WebSocket 连接",
    "Unsupported upgrade request.": "收到不支持的协议升级请求（Upgrade），按普通请求处理",
    "No supported WebSocket library detected. Please use \"pip install 'uvicorn[standard]'\", or install "
    "'websockets' or 'wsproto' manually.": "未安装 WebSocket 库，无法处理 WebSocket 升级请求",
    "Exceeded concurrency limit.": "并发连接数超过上限，已回复 503",
    '%s - "WebSocket %s" [accepted]': "WebSocket {1} 已接受 客户端 {0}",
    '%s - "WebSocket %s" 403': "WebSocket {1} 状态 403 客户端 {0}",
    '%s - "WebSocket %s" %d': "WebSocket {1} 状态 {2} 客户端 {0}",
}
ACCESS_TEMPLATE = '%s - "%s %s HTTP/%s" %d'
# Successful requests a console repeats on its own (the monitoring banner's /healthz every 30 s, scripts and
# styles of every page, a live stream's reconnect) go to DEBUG: the file keeps them, the console shows the
# requests people make.
ROUTINE_PATHS = re.compile(r"^(/healthz|/static/.*|/favicon\.ico|/api/v1/.*/stream)$")
BIND_ERRORS = {
    errno.EADDRINUSE: "地址已被占用，请关闭占用它的程序或换一个端口",
    errno.EACCES: "权限不足，1024 以下的端口需要更高权限",
    errno.EADDRNOTAVAIL: "本机没有这个地址",
}


def uvicorn_zh(record: logging.LogRecord, level: str | int, message: str) -> tuple[str | int, str]:
    """uvicorn's record as the level and Chinese line to log; a line it does not know is returned unchanged."""
    if isinstance(record.msg, OSError):  # the listening socket could not be opened: uvicorn logs the error itself
        return level, bind_error_zh(record.msg)
    args = record.args if isinstance(record.args, tuple) else ()
    if record.msg == ACCESS_TEMPLATE and len(args) == 5:
        return access_line(*(str(arg) for arg in args))
    template = UVICORN_ZH.get(record.msg) if isinstance(record.msg, str) else None
    if template is None:
        return level, message
    try:
        return level, template.format(*args)
    except (IndexError, KeyError, ValueError):
        return level, message


def bind_error_zh(exc: OSError) -> str:
    """ "[Errno 98] error while attempting to bind on address ('127.0.0.1', 8080): address already in use"."""
    address = re.search(r"address \('?([^',]*)'?, (\d+)", str(exc))
    where = f"{address[1]}:{address[2]}" if address else ""
    reason = BIND_ERRORS.get(exc.errno or 0, str(exc))
    return f"无法监听 {where}：{reason}" if where else f"无法监听：{reason}"


def access_line(client: str, method: str, target: str, _version: str, status: str) -> tuple[str, str]:
    """One request as a greppable Chinese line: ``请求 GET /api/v1/items?q=*&page=* 状态 200 客户端 127.0.0.1:5481``.

    Query values are starred: a search term (``q``) or a filter can be a person's name or phone number, and the
    log is read by people who may not see them. The parameter names stay, to tell the requests apart.
    """
    path, _, query = target.partition("?")
    if query:
        path += "?" + "&".join(part.split("=", 1)[0] + ("=*" if "=" in part else "") for part in query.split("&"))
    code = int(status) if status.isdigit() else 0
    level = "INFO"
    if code >= 500:
        level = "WARNING"
    elif code < 400 and ROUTINE_PATHS.match(target.partition("?")[0]):
        level = "DEBUG"
    return level, f"请求 {method} {path} 状态 {status} 客户端 {client or '未知'}"


def set_masker(mask: Any) -> None:
    """Install the personal-data mask applied to every log message (see service.masking)."""
    _masker[:] = [mask]


def _patch(record: Record) -> None:
    if not _masker:
        return
    mask = _masker[0]
    message = record["message"]
    exception = record["exception"]
    if exception is not None and exception.type is not None:
        # Exception texts quote crawled data (ValueError(f"bad date in {title}")) and sinks would print
        # them unmasked: the traceback joins the message, masked, and the record carries no exception.
        formatted = "".join(traceback.format_exception(exception.type, exception.value, exception.traceback))
        message = f"{message}\n{formatted.rstrip()}"
        record["exception"] = None
    record["message"] = mask(message)
    record["extra"] = {k: mask(v) if isinstance(v, str) else v for k, v in record["extra"].items()}


def setup_logging(
    level: str = "INFO",
    log_dir: Path | None = None,
    file_level: str = "DEBUG",
    rotation: str = "50 MB",
    retention: str = "30 days",
    library_info: bool = False,
) -> None:
    """Readable console output on stderr and, with ``log_dir``, a rotated JSON-lines file there.

    ``library_info`` (``--verbose``) keeps the INFO lines of Alembic and of APScheduler's job runs, which
    otherwise fill the console with a migration report per command and a heartbeat line every 15 s.
    """

    set_masker(mask_text)  # crawled text in log lines must not carry phone or ID numbers to the files
    logger.remove()
    logger.configure(patcher=_patch)
    logger.add(
        sys.stderr,
        level=level.upper(),
        format="<green>{time:YYYY-MM-DD HH:mm:ss}</green> <level>{level: <7}</level> <cyan>{name}</cyan> {message}",
        backtrace=False,
        diagnose=False,
    )
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        logger.add(
            log_dir / "yuqing.jsonl",
            level=file_level.upper(),
            serialize=True,
            rotation=rotation,
            retention=retention,
            enqueue=True,
            backtrace=False,
            diagnose=False,
            encoding="utf-8",
        )
    lowest = min(logger.level(level.upper()).no, logger.level(file_level.upper()).no if log_dir else 100)
    route_stdlib(lowest, library_info)


# Loggers whose records go only through loguru (not also through the root logger's handler).
ROUTED = ("uvicorn", "uvicorn.error", "uvicorn.access", "scrapy", "twisted", "apscheduler", "sqlalchemy")


def route_stdlib(lowest: int = logging.DEBUG, library_info: bool = False) -> None:
    """Send the standard library's log records (Scrapy, uvicorn, SQLAlchemy) through loguru.

    ``lowest``: the level of the most detailed sink. A record below it is dropped by the handler before it is
    formatted: Scrapy logs every request and every scraped item at DEBUG, and passing each to loguru (a frame
    walk, the message with the item's repr) only for loguru to drop it cost a crawl more than its parsing.
    Called again after Scrapy has reset its loggers.
    """
    logging.basicConfig(handlers=[InterceptHandler(lowest)], level=0, force=True)
    for name in ROUTED:
        std = logging.getLogger(name)
        std.handlers = [InterceptHandler(lowest)]
        std.propagate = False
    # SQLAlchemy's INFO is every statement; keep it for echo=True only.
    logging.getLogger("sqlalchemy.engine").setLevel(logging.WARNING)
    logging.getLogger("apscheduler").setLevel(logging.INFO)
    logging.getLogger("elastic_transport").setLevel(logging.WARNING)
    # httpx logs each webhook delivery in English with its full URL, whose query may hold the channel's
    # token (钉钉 access_token), and httpcore traces each of its steps; the outbox logs its own Chinese line.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    logging.getLogger("httpcore").setLevel(logging.WARNING)
    chatty = logging.INFO if library_info else logging.WARNING
    logging.getLogger("alembic").setLevel(chatty)
    logging.getLogger("apscheduler.executors").setLevel(chatty)
    # "Added job ... to job store" per job at every start: English library lines an office log reader
    # cannot use; the product logs its own line (with the job count) when the scheduler starts.
    logging.getLogger("apscheduler.scheduler").setLevel(chatty)
