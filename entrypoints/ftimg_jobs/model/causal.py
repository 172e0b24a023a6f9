"""Whether a model's attention is causal in every layer (a decoder-only model), read from the model itself."""


def attends_causally(model) -> bool:
    """True when every attention module says it is causal; False for encoders and for models that do not say.

    transformers' attention modules carry ``is_causal`` (True for Llama-style decoders, False for
    BERT-style encoders in transformers 5); a model without any such module is taken as not causal.
    """
    flags = [module.is_causal for module in model.modules() if isinstance(getattr(module, "is_causal", None), bool)]
    return bool(flags) and all(flags)
