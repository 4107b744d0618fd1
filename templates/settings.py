"""The fields the model patch adds to the target's config dataclass.

The patch copies the field lines of `ReservoirSettings`, comments included,
to the end of the target's config fields.
"""

from dataclasses import dataclass

MODEL_TYPES = ("NanEcho", "RAT")


@dataclass
class ReservoirSettings:
    # Reservoir-Augmented Transformer: "RAT" swaps each block's feed-forward layer for a fixed echo-state reservoir
    model_type: str = "NanEcho"
    reservoir_units: int = 512
    reservoir_spectral_radius: float = 0.9
    reservoir_leak_rate: float = 0.5
    reservoir_input_scaling: float = 1.0
    reservoir_connectivity: float = 0.1
    reservoir_seed: int = 1234

    def __post_init__(self):
        if self.model_type not in ("NanEcho", "RAT"):
            raise ValueError(f"unknown model_type {self.model_type!r}: valid model types are 'NanEcho' and 'RAT'")
