FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 \
    HOST=0.0.0.0 PORT=8000 ALLOWED_HOSTS=*

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .

RUN useradd --create-home gateway && chown -R gateway /app
USER gateway

EXPOSE 8000
# Migrate, apply gateway.yaml, serve with $WORKERS uvicorn workers (scripts/serve.sh).
# Set DATABASE_URL / REDIS_URL / SECRET_KEY / GATEWAY_ADMIN_KEY in the environment.
ENV WORKERS=2 PYTHON_BIN=python
CMD ["scripts/serve.sh"]
