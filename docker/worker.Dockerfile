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
# Run as an unprivileged user, never root. It owns /data and its home and nothing else:
# the artifacts volume mounts at /data, and a new named volume takes the ownership of the
# image's folder, so models and checkpoints can be written there and the code cannot be
# changed. tests/e2e/test_compose.py checks that the services write nowhere else.
RUN useradd --create-home --uid 10001 --user-group cifarlab \
 && install -d -o cifarlab -g cifarlab /data
USER 10001
# docker-compose.yml gives the same command; tests/e2e/test_compose.py checks they agree.
CMD ["cifarlab", "worker", "--concurrency", "1"]
