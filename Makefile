# ftimg: make image | make images | make lock | make test | make demo | make push REGISTRY=host:port/repo
PYTHON  ?= python3
PROFILE ?= cu121-torch2.1
VENV    := .venv
FTIMG   := $(VENV)/bin/ftimg
PYTEST  := $(VENV)/bin/pytest
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# apt packages the host needs: debootstrap builds the base image from Debian's
# archive; docker-registry is the real local registry the push tests use.
HOST_PACKAGES := debootstrap docker-registry

.PHONY: setup host-packages image images lock test unit demo push clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -e '.[test]'
	touch $@

host-packages:
	@missing=$$(for p in $(HOST_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing host packages: $$missing"; \
	  $(SUDO) apt-get update -qq && $(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

setup: $(VENV)/.installed host-packages

## image: the default profile (base image, verified wheelhouse, build)
image: setup
	$(FTIMG) build $(PROFILE)

## images: every profile in images.lock
images: setup
	$(FTIMG) build --all

## lock: re-resolve docker/profiles/*.toml into images.lock
lock: setup
	$(FTIMG) lock

## unit: the fast tier (no Docker, no torch)
unit: setup
	$(PYTEST)

## test: unit + docker tiers against the real engine (builds the image first)
test: image
	$(PYTEST) -m "not gpu" -v -rs --durations=15

## demo: the main job on the embedded tiny model (QLoRA on a GPU host, LoRA on CPU)
demo: image
	@if $(FTIMG) doctor 2>/dev/null | grep -q "^ok   nvidia runtime"; then \
	  $(FTIMG) run --gpus all qlora-sft --output_dir output/demo; \
	else \
	  $(FTIMG) run lora-sft --output_dir output/demo; \
	fi

## push: REGISTRY=registry.example.com/team/ftimg-train make push
push: setup
	@test -n "$(REGISTRY)" || { echo "usage: make push REGISTRY=host[:port]/repo"; exit 2; }
	$(FTIMG) push ftimg/train:$(PROFILE) $(REGISTRY)

clean:
	rm -rf build/ .pytest_cache
