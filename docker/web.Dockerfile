# The web service: FastAPI pages and API. No TensorFlow in this image.
FROM python:3.11-slim
WORKDIR /srv/cifarlab
COPY pyproject.toml README.md alembic.ini constraints.txt ./
COPY app ./app
COPY worker ./worker
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir -c constraints.txt '.[postgres]'
EXPOSE 8000
# docker-compose.yml gives the same command; tests/e2e/test_compose.py checks they agree.
CMD ["cifarlab", "web", "--host", "0.0.0.0", "--port", "8000"]
