"""Generation: input records, batching, decoding, data-parallel ranks and exactly-once resume."""
