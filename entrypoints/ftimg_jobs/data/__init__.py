"""Records on disk → one common example shape (training and inference alike) → token sequences and batches."""
