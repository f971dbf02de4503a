# Prediction service image: python mlops_pipeline/src/model_deploy.py serve
# The model is trained during the build (on Base_de_datos.csv with config.yaml), so a clean clone
# builds a working image: artifacts/ is git-ignored and .dockerignore'd, never copied from a laptop.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MPLBACKEND=Agg \
    PORT=8000

WORKDIR /app

# Dependencies first: this layer is rebuilt only when requirements.txt changes.
COPY requirements.txt ./
RUN pip install --no-cache-dir -r requirements.txt

COPY Base_de_datos.csv ./
COPY mlops_pipeline/ mlops_pipeline/

# Train the model inside the image, then hand the artifacts (and the SQLite log folder) to the
# non-root user that runs the service.
RUN python mlops_pipeline/src/model_training_evaluation.py --no-tracking --quiet \
    && groupadd --gid 10001 app && useradd --create-home --uid 10001 --gid 10001 app \
    && mkdir -p mlops_pipeline/artifacts /data \
    && chown -R app:app mlops_pipeline/artifacts /data

USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]
CMD ["python", "mlops_pipeline/src/model_deploy.py", "serve", "--host", "0.0.0.0"]
