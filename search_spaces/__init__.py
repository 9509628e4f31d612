"""Search spaces over sub-networks of BERT/RoBERTa models, their masks, and the exact cost model."""
from search_spaces.base import Config, SearchSpace
from search_spaces.cost import (
    DEFAULT_SEQ_LEN,
    SubNetworkCost,
    cost_of,
    count_encoder_macs,
    count_encoder_parameters,
    count_macs,
    count_parameters,
    count_parameters_paper,
    encoder_parameter_fraction,
    mac_fraction,
    parameter_fraction,
)
from search_spaces.masks import SubNetworkMasks
from search_spaces.shape import ModelShape
from search_spaces.spaces import (
    SEARCH_SPACES,
    LargeSearchSpace,
    LayerSearchSpace,
    MediumSearchSpace,
    SmallPower2SearchSpace,
    SmallSearchSpace,
    get_search_space,
    power_of_two_head_counts,
)

__all__ = [
    "Config",
    "DEFAULT_SEQ_LEN",
    "LargeSearchSpace",
    "LayerSearchSpace",
    "MediumSearchSpace",
    "ModelShape",
    "SEARCH_SPACES",
    "SearchSpace",
    "SmallPower2SearchSpace",
    "SmallSearchSpace",
    "SubNetworkCost",
    "SubNetworkMasks",
    "cost_of",
    "count_encoder_macs",
    "count_encoder_parameters",
    "count_macs",
    "count_parameters",
    "count_parameters_paper",
    "encoder_parameter_fraction",
    "get_search_space",
    "mac_fraction",
    "parameter_fraction",
    "power_of_two_head_counts",
]
