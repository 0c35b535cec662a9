# The traceledger service. With DATABASE_URL set it uses that PostgreSQL server;
# the embedded PostgreSQL is for laptops, not containers.
FROM python:3.12-slim
WORKDIR /app
# setup.py compiles the page catalogs (gettext .po -> .mo) at install.
COPY pyproject.toml setup.py README.md ./
COPY traceledger ./traceledger
COPY gateway ./gateway
COPY schemas ./schemas
# Editable, so the JSON Schemas in /app/schemas are found where the code expects them.
RUN pip install --no-cache-dir -e . && useradd --create-home traceledger
USER traceledger
ENV TRACELEDGER_HOME=/home/traceledger/data
EXPOSE 8080
ENTRYPOINT ["traceledger"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
