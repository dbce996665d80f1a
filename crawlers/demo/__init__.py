"""The bundled demo site (``yuqing demo``): realistic fictional government pages served on loopback."""

from crawlers.demo.server import DEMO_PORT, DEMO_SOURCES, demo_sources_yaml, serve_demo

__all__ = ["DEMO_PORT", "DEMO_SOURCES", "demo_sources_yaml", "serve_demo"]
