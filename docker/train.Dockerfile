# The training image: the profile's stack plus ftimg's entrypoints. Only code and
# the generated tiny default model live here, so a code-only change rebuilds just
# these steps on top of the cached stack image (user, env and entrypoint come
# from the stack; `ftimg build` appends the labels as one LABEL instruction).
ARG STACK_IMAGE
FROM ${STACK_IMAGE}
COPY entrypoints/ /opt/ftimg/entrypoints/
# A throwaway HOME: importing torch/triton here would otherwise leave caches in
# /home/ftimg that differ per build.
RUN HOME=/tmp/build-home python -m ftimg_jobs.tiny_model /opt/ftimg/models/tiny-llama \
 && rm -rf /tmp/build-home
