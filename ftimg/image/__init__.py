"""Making and shipping images: the Debian base, the verified wheelhouse, builds, labels, verify and push."""
