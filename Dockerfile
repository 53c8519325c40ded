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
# Migrate, then serve ASGI. Set DATABASE_URL / REDIS_URL / SECRET_KEY / GATEWAY_ADMIN_KEY in the environment.
CMD ["sh", "-c", "python manage.py migrate --noinput && python manage.py loadconfig --if-exists && exec daphne -b \"$HOST\" -p \"$PORT\" gateway.asgi:application"]
