# The pinned stack of one profile: everything from images.lock, nothing else.
# Built by `ftimg build` from a context that holds only the verified wheelhouse
# subset of the profile, stack.json and the sdist patches. Classic-builder syntax
# only (no BuildKit features): the engine may be old and nothing may be pulled.
ARG BASE_IMAGE

FROM ${BASE_IMAGE} AS builder
ARG FTIMG_LOCK_HASH
# The builder stage holds a second copy of the wheelhouse and of the venv (~9 GB for
# cu121); ftimg build removes it by this label once the stack image is tagged.
LABEL org.ftimg.builder-of=${FTIMG_LOCK_HASH}
# SOURCE_DATE_EPOCH makes pip compile .pyc files with source hashes, not timestamps;
# PYTHONHASHSEED fixes set ordering in setup.py scripts (deepspeed writes its "all"
# extra from a set into METADATA). Two builds from the same lock are then byte-identical.
ENV SOURCE_DATE_EPOCH=0 PYTHONHASHSEED=0 PIP_NO_CACHE_DIR=1
COPY . /stack/
RUN python3 /stack/install_stack.py

FROM ${BASE_IMAGE}
ARG FTIMG_PROFILE
ARG FTIMG_LOCK_HASH
COPY --from=builder /opt/venv /opt/venv
# A fixed non-root user written directly (useradd would stamp today's date into
# /etc/shadow); `ftimg run` maps the caller's uid/gid, and the world-writable home
# lets any mapped user keep caches (HF, Triton, matplotlib) there. The train image
# generates the tiny default model as this user into /opt/ftimg/models.
RUN echo 'ftimg:x:1000:1000:ftimg:/home/ftimg:/bin/bash' >> /etc/passwd \
 && echo 'ftimg:x:1000:' >> /etc/group \
 && mkdir -p /home/ftimg /work /opt/ftimg/models \
 && chmod 1777 /home/ftimg /work \
 && chown 1000:1000 /opt/ftimg/models
# Everything the train image needs but its code is set here, once per lock: on a
# slow storage driver each instruction of the train image costs a commit.
ENV PATH=/opt/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    VIRTUAL_ENV=/opt/venv \
    HOME=/home/ftimg \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    FTIMG_PROFILE=${FTIMG_PROFILE} \
    FTIMG_LOCK_HASH=${FTIMG_LOCK_HASH} \
    FTIMG_DEFAULT_MODEL=/opt/ftimg/models/tiny-llama \
    PYTHONPATH=/opt/ftimg/entrypoints
WORKDIR /work
USER 1000:1000
ENTRYPOINT ["python", "-m", "ftimg_jobs"]
