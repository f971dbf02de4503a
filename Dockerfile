# Images of the project (multi-stage; see mlops_pipeline/docs/docker.md):
#   docker build -t credito-api .                              the prediction API (last stage, the default)
#   docker build --target dashboard -t credito-tablero .       the Streamlit dashboard
#   podman build --format docker ...                           the same with podman (keeps the HEALTHCHECK)
#
# The model is trained during the build, in the `train` stage, from Base_de_datos.csv and
# config.yaml: artifacts/ is git-ignored and .dockerignore'd, so a clean clone builds a working
# image and the model it serves always comes from that commit's code and data, never from a
# laptop's folder. Only the serving dependencies (mlops_pipeline/requirements/serve.txt) reach the
# API image; training (optuna, mlflow, pyarrow), dashboard and test tooling stay in other stages.

# ----------------------------------------------------------------------------- base
FROM python:3.11-slim-bookworm AS base
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore \
    MPLBACKEND=Agg
WORKDIR /app
# the unprivileged user every image runs as (a home for matplotlib's and streamlit's caches)
RUN groupadd --gid 10001 app \
    && useradd --no-log-init --create-home --uid 10001 --gid 10001 --shell /usr/sbin/nologin app

# ----------------------------------------------------------------------------- sources
# Splits mlops_pipeline/src by image, so that each stage copies only what it runs and its cache
# survives edits to the others (whatever modules src/ holds: nothing here lists them one by one):
#   /out/serve      every module except the dashboard (the API, `score`, monitoring, the registry...)
#   /out/train      the same without model_deploy.py: editing the API does not retrain
#                   (training imports the shared modules, never the API; tests/test_container.py checks it)
#   /out/dashboard  dashboard*.py and its page folders, if any
FROM base AS sources
COPY mlops_pipeline/src/ /sources/
RUN mkdir -p /out/serve /out/train /out/dashboard \
    && cp -p /sources/*.py /out/serve/ \
    && find /out/serve -maxdepth 1 -name 'dashboard*.py' -exec mv -t /out/dashboard {} + \
    && for d in dashboard_pages pages .streamlit; do if [ -d "/sources/$d" ]; then cp -pr "/sources/$d" /out/dashboard/; fi; done \
    && cp -p /out/serve/*.py /out/train/ \
    && rm /out/train/model_deploy.py

# ----------------------------------------------------------------------------- train
FROM base AS train
COPY mlops_pipeline/requirements/serve.txt mlops_pipeline/requirements/train.txt mlops_pipeline/requirements/
RUN pip install --no-cache-dir -r mlops_pipeline/requirements/train.txt
COPY Base_de_datos.csv ./
COPY mlops_pipeline/config.yaml mlops_pipeline/
COPY --from=sources /out/train/ mlops_pipeline/src/
RUN python mlops_pipeline/src/model_training_evaluation.py --no-tracking --quiet
# Which versions the images ship: only the champion (and registry.json naming it) by default. The
# image is the deployable artifact of the model that won the selection: the other candidates stay
# in the build stage with the comparison reports, so `?model=` cannot serve a loser in production
# by accident and the image carries one model. `--build-arg MODELS=all` ships every candidate
# (about 6 MB on the shipped data) for `?model=` and PUT /models/default. The registry writes its
# JSON files through private temporary files (mode 0600): chmod makes them readable to the app.
ARG MODELS=champion
RUN mkdir -p /ship \
    && if [ "$MODELS" = all ]; then cp -a mlops_pipeline/artifacts/models/. /ship/; \
       else champion=$(python -c 'import json; print(json.load(open("mlops_pipeline/artifacts/models/registry.json"))["champion"])') \
            && cp -a mlops_pipeline/artifacts/models/registry.json "mlops_pipeline/artifacts/models/$champion" /ship/; fi \
    && chmod -R a+rX /ship

# ----------------------------------------------------------------------------- serve (shared by both images)
FROM base AS serve
COPY mlops_pipeline/requirements/serve.txt mlops_pipeline/requirements/
RUN pip install --no-cache-dir -r mlops_pipeline/requirements/serve.txt
# Base_de_datos.csv (300 KB) stays: config.yaml names it, and `score`, `simulate` and the checks
# draw example rows from it.
COPY Base_de_datos.csv ./
COPY mlops_pipeline/config.yaml mlops_pipeline/
COPY --from=sources /out/serve/ mlops_pipeline/src/
COPY --from=train /ship/ mlops_pipeline/artifacts/models/
# Code and models belong to root (read-only for the app); the app owns the models folder itself
# (PUT /models/default rewrites registry.json) and /data, the prediction log's volume.
RUN python -m compileall -q mlops_pipeline/src \
    && mkdir -p /data \
    && chown 10001:10001 mlops_pipeline/artifacts/models /data
# The prediction log lives on the volume: `docker run -v predicciones:/data IMAGE` keeps it when the
# container is replaced. DATABASE_URL=postgresql://... sends it to PostgreSQL instead.
ENV DATABASE_URL=sqlite:////data/predictions.db
VOLUME /data

# ----------------------------------------------------------------------------- dashboard
# docker build --target dashboard -t credito-tablero . ; it reads the same /data volume and
# calls the API at MLOPS_API_URL (see mlops_pipeline/compose.yaml).
FROM serve AS dashboard
COPY mlops_pipeline/requirements/dashboard.txt mlops_pipeline/requirements/
RUN pip install --no-cache-dir -r mlops_pipeline/requirements/dashboard.txt
COPY --from=sources /out/dashboard/ mlops_pipeline/src/
ENV MLOPS_API_URL=http://127.0.0.1:8000 \
    STREAMLIT_BROWSER_GATHER_USAGE_STATS=false
USER 10001:10001
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4)"]
CMD ["streamlit", "run", "mlops_pipeline/src/dashboard.py", "--server.address", "0.0.0.0", "--server.port", "8501", "--server.headless", "true"]

# ----------------------------------------------------------------------------- api (default target)
FROM serve AS api
ENV PORT=8000
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=40s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health', timeout=4)"]
CMD ["python", "mlops_pipeline/src/model_deploy.py", "serve", "--host", "0.0.0.0"]
