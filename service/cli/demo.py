"""The demo: the built-in demo site on loopback, and the whole product running against it."""

from __future__ import annotations

import typer
from loguru import logger

from service.cli.base import app, fail, settings_of
from service.cli.server import ensure_port_free, serve_product
from service.settings import Settings, load_settings


def _follow_demo_port(settings: Settings, base_url: str) -> Settings:
    """Settings whose sources point at the demo site where it really listens.

    The shipped sources.yaml names the default demo address; on another ``--demo-port`` the config dir
    is copied to ``数据目录/demo-config`` with that address rewritten, so every crawl reaches the site.
    """
    import shutil

    from crawlers.demo.server import DEMO_PORT

    default = f"http://127.0.0.1:{DEMO_PORT}"
    sources = settings.config_dir / "sources.yaml"
    if base_url.rstrip("/") == default or not sources.exists():
        return settings
    text = sources.read_text(encoding="utf-8")
    if default not in text:
        return settings
    target = settings.data_path("demo-config")
    shutil.copytree(settings.config_dir, target, dirs_exist_ok=True)
    (target / "sources.yaml").write_text(text.replace(default, base_url.rstrip("/")), encoding="utf-8")
    logger.info("演示：来源指向演示站点 {}（配置已复制到 {}）", base_url, target)
    return load_settings(target)


@app.command()
def demo(
    ctx: typer.Context,
    host: str | None = typer.Option(None, help="监听地址 (default 127.0.0.1)"),
    port: int | None = typer.Option(None, help="端口 (default 8000)"),
    demo_port: int = typer.Option(8801, help="示例站点端口 (示例来源自动指向它)"),
) -> None:
    """在本机回环地址上启动内置示例站点，并用它运行整个产品。"""
    from crawlers.demo.server import serve_demo

    settings = settings_of(ctx)
    ensure_port_free(host or settings.server.host, port or settings.server.port)
    ensure_port_free("127.0.0.1", demo_port, "示例站点端口")
    try:
        server, base_url = serve_demo(demo_port)
    except OSError as exc:
        fail(f"示例站点无法监听端口 {demo_port}: {exc}", 1)
    try:
        settings = _follow_demo_port(settings, base_url)
    except OSError as exc:
        server.shutdown()
        fail(f"无法准备示例配置：{exc}", 1)
    typer.echo(f"示例站点 (demo site): {base_url}（每分钟发布一条新工单）")
    typer.echo(
        f"控制台 (console): http://{host or settings.server.host}:{port or settings.server.port}/ "
        "— 先创建账号: yuqing user add 用户名 --role officer"
    )
    try:
        serve_product(settings, host, port, with_scheduler=True)
    finally:
        server.shutdown()
