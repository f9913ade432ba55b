# fleetsim in a container: a run, a segment of a run (deploy/kubernetes/), or a merge.
#   docker build -t fleetsim .
#   docker run --rm fleetsim spawn --url ws://csms.example:9000/ocpp --chargers 1000 -t 5m
# The image runs as an unprivileged user in /reports; reports go to /reports/reports/ by default
# (spawn's default --report is reports/<UTC time>.json, relative to the working directory).

FROM python:3.11-slim AS build
# hdrhistogram may build its C extension from source
RUN apt-get update \
    && apt-get install -y --no-install-recommends gcc libc6-dev \
    && rm -rf /var/lib/apt/lists/*
COPY pyproject.toml README.md /src/
COPY fleetsim /src/fleetsim
COPY profiles /src/profiles
# a regular install: the shipped profiles go to /opt/venv/share/fleetsim/profiles
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-cache-dir /src

FROM python:3.11-slim
COPY --from=build /opt/venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    MPLCONFIGDIR=/tmp/matplotlib
# MPLCONFIGDIR: HOME is /reports, and matplotlib (HTML reports, the merge step) would otherwise
# leave .config/ and .cache/ on the reports volume
RUN useradd --uid 10001 --user-group --no-create-home --home-dir /reports fleetsim \
    && mkdir /reports && chown fleetsim:fleetsim /reports
USER 10001
WORKDIR /reports
ENTRYPOINT ["fleetsim"]
CMD ["--help"]
