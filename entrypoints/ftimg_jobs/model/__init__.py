"""Loading models and tokenizers: precision, attention, quantization, LoRA, adapters, the embedded tiny model."""
