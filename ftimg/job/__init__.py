"""Running a job in a container on this host: the run spec (GPUs, shm, ulimits, mounts, user), secrets, the run."""
