"""Whether a model's attention is causal in every layer (a decoder-only model), read from the model itself,
and which token transformers' classification heads of such models pool."""


def attends_causally(model) -> bool:
    """True when every attention module says it is causal; False for encoders and for models that do not say.

    transformers' attention modules carry ``is_causal`` (True for Llama-style decoders, False for
    BERT-style encoders in transformers 5); a model without any such module is taken as not causal.
    """
    flags = [module.is_causal for module in model.modules() if isinstance(getattr(module, "is_causal", None), bool)]
    return bool(flags) and all(flags)


def pools_before_first_pad() -> bool:
    """True where transformers' decoder classification heads pool the token before a row's first pad id.

    Before 4.49 (huggingface/transformers#35911) they did, so a record that holds the pad id itself
    (often the EOS token, which chat-formatted records contain) is pooled at the wrong token when
    the row is padded on the right; since 4.49 they pool the rightmost token that is not the pad id.
    """
    import transformers
    from packaging.version import Version

    return Version(transformers.__version__).release < (4, 49)
