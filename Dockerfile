# syntax=docker/dockerfile:1
#
# ldis: one image for every role (web, worker, beat, migrate); the command picks the role.
#   docker build -t ldis:local .
#   docker run --rm --env-file config/production.env ldis:local ldis db upgrade
# See docs/deploy.md for the compose set-up that runs all of it.

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_ROOT_USER_ACTION=ignore

# A fixed, unprivileged uid/gid so volume ownership is predictable across rebuilds.
RUN groupadd --system --gid 10001 ldis \
 && useradd --system --uid 10001 --gid ldis --create-home --home-dir /home/ldis \
        --shell /usr/sbin/nologin ldis

# Install the package (and its dependencies, all available as wheels: no compiler needed).
# The source is copied to /tmp/src only for the build and removed afterwards.
COPY pyproject.toml README.md /tmp/src/
COPY ldis/ /tmp/src/ldis/
COPY workers/ /tmp/src/workers/
RUN pip install /tmp/src && rm -rf /tmp/src

# Runtime files that are not Python packages. From config/ only what the image needs: never
# config/*.env, which hold the operator's secrets and are passed in at run time instead.
WORKDIR /app
COPY alert_templates/ /app/alert_templates/
COPY config/gunicorn.conf.py config/production.env.example config/development.env.example \
     /app/config/

# The installed package looks for alert_templates/ and config/ beside itself (the project
# root of a source checkout; site-packages once installed), so point those names at /app.
# /app itself belongs to ldis so that `ldis beat` can keep its schedule file in the working
# directory; the copied templates and config stay root-owned and read-only for the app.
# /app/instance (LDIS_INSTANCE_PATH) holds the outbox and other local state: compose mounts
# a named volume there, which inherits this ownership on first use.
RUN site="$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
 && for d in alert_templates config; do \
        if [ ! -e "$site/$d" ]; then ln -s "/app/$d" "$site/$d"; fi; \
    done \
 && mkdir -p /app/instance \
 && chown ldis:ldis /app /app/instance

ENV LDIS_INSTANCE_PATH=/app/instance

USER ldis

EXPOSE 8000

# Health checks live in docker-compose.yml (the right probe differs per role).
CMD ["ldis", "web", "--host", "0.0.0.0", "--port", "8000"]
