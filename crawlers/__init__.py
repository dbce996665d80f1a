"""Config-driven Scrapy crawlers: sources.yaml -> generic spiders -> pipelines -> the item store."""
