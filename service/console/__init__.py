"""The web console: server-rendered page shells whose scripts call the JSON API (no CDN, no inline script)."""
