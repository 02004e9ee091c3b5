# A training worker: Keras on TensorFlow with CUDA, one per GPU.
FROM python:3.11-slim
WORKDIR /srv/cifarlab
COPY pyproject.toml README.md alembic.ini constraints.txt ./
COPY app ./app
COPY worker ./worker
COPY migrations ./migrations
COPY templates ./templates
COPY static ./static
RUN pip install --no-cache-dir -c constraints.txt '.[worker,gpu,postgres]'
# docker-compose.yml gives the same command; tests/e2e/test_compose.py checks they agree.
CMD ["cifarlab", "worker", "--concurrency", "1"]
