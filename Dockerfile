# One image for every foryou service (thunder, phoenix, home-mixer) and job (seed, train).
# The service is chosen by the command: `docker run foryou thunder`, `... home-mixer`.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    JAX_PLATFORMS=cpu \
    FORYOU_THUNDER_HOST=0.0.0.0 \
    FORYOU_PHOENIX_HOST=0.0.0.0 \
    FORYOU_HOME_MIXER_HOST=0.0.0.0

WORKDIR /app
# dependencies first, so code edits do not reinstall them
COPY pyproject.toml README.md ./
COPY protos ./protos
COPY foryou_protos ./foryou_protos
COPY foryou ./foryou
COPY candidate_pipeline ./candidate_pipeline
COPY thunder ./thunder
COPY phoenix ./phoenix
COPY home_mixer ./home_mixer
COPY bench ./bench
COPY explorer ./explorer
RUN pip install .

# named volumes mounted here inherit this ownership
RUN useradd --create-home foryou && mkdir -p /data/checkpoints /data/state && chown -R foryou /data
USER foryou
EXPOSE 50051 50052 50053 9151 9152 9153
ENTRYPOINT ["foryou"]
CMD ["--help"]
