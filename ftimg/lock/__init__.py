"""images.lock: the profile specs, resolving them for the image's platform, and the lock file model."""
