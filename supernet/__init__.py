"""The weight-sharing super-network, sliced sub-network execution, extraction and model loading.

Importing the package registers this package's pruned model classes with ``transformers``' Auto classes
(see :mod:`supernet.extract`).
"""
from supernet import loading
from supernet.extract import (
    PrunedBertConfig,
    PrunedBertForMultipleChoice,
    PrunedBertForSequenceClassification,
    PrunedRobertaConfig,
    PrunedRobertaForMultipleChoice,
    PrunedRobertaForSequenceClassification,
    extract_sub_network,
    is_plain,
    load_extracted,
    load_extracted_masks,
    save_extracted,
)
from supernet.loading import load_model, load_tokenizer, model_shape, resolve_device
from supernet.model import SuperNetwork
from supernet.reference import masked, masked_forward

__all__ = [
    "PrunedBertConfig",
    "PrunedBertForMultipleChoice",
    "PrunedBertForSequenceClassification",
    "PrunedRobertaConfig",
    "PrunedRobertaForMultipleChoice",
    "PrunedRobertaForSequenceClassification",
    "SuperNetwork",
    "extract_sub_network",
    "is_plain",
    "load_extracted",
    "load_extracted_masks",
    "load_model",
    "load_tokenizer",
    "loading",
    "masked",
    "masked_forward",
    "model_shape",
    "resolve_device",
    "save_extracted",
]
