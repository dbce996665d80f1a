# The yuqing image: API + console, scheduler and crawler workers share it (different commands).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    YUQING_CONFIG_DIR=/etc/yuqing YUQING_DATA_DIR=/var/lib/yuqing
WORKDIR /app
COPY pyproject.toml README.md ./
COPY service ./service
COPY crawlers ./crawlers
COPY alerting ./alerting
RUN pip install --no-cache-dir . && useradd --system --home /var/lib/yuqing yuqing \
    && mkdir -p /var/lib/yuqing && chown yuqing /var/lib/yuqing
COPY config /etc/yuqing
USER yuqing
EXPOSE 8000
CMD ["yuqing", "serve", "--host", "0.0.0.0"]
