# fleetsim in a container: a run, a segment of a run (deploy/kubernetes/), or a merge.
#   docker build -t fleetsim .
#   docker run --rm fleetsim spawn --url ws://csms.example:9000/ocpp --chargers 1000 -t 5m
# The image runs as an unprivileged user in /reports, where reports go by default.

FROM python:3.11-slim AS build
# hdrhistogram may build its C extension from source
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /opt/fleetsim/
COPY fleetsim /opt/fleetsim/fleetsim
COPY profiles /opt/fleetsim/profiles
# Installed in place: the shipped profiles are read from the source tree's profiles/.
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir -e /opt/fleetsim

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/fleetsim /opt/fleetsim
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /reports fleetsim \
    && mkdir /reports && chown fleetsim:fleetsim /reports
USER 10001
WORKDIR /reports
ENTRYPOINT ["fleetsim"]
CMD ["--help"]
