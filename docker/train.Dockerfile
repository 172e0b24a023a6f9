# The training image: the profile's stack plus ftimg's entrypoints (user, env and
# entrypoint come from the stack; `ftimg build` appends the labels as one LABEL
# instruction). Layers go from what changes least to what changes most: the tiny
# default model is generated from its own module only, so a change to any other
# job code reuses it and rebuilds just the final COPY.
ARG STACK_IMAGE
FROM ${STACK_IMAGE}
COPY entrypoints/ftimg_jobs/__init__.py /opt/ftimg/entrypoints/ftimg_jobs/
COPY entrypoints/ftimg_jobs/model/__init__.py entrypoints/ftimg_jobs/model/chat_template.py \
     entrypoints/ftimg_jobs/model/tiny_model.py /opt/ftimg/entrypoints/ftimg_jobs/model/
# A throwaway HOME: importing torch/triton here would otherwise leave caches in
# /home/ftimg that differ per build.
RUN HOME=/tmp/build-home python -m ftimg_jobs.model.tiny_model /opt/ftimg/models/tiny-llama \
 && rm -rf /tmp/build-home
COPY entrypoints/ /opt/ftimg/entrypoints/
