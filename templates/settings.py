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
    # Reservoir state width: twice the CI model width of 256, while each time step's cost grows as units squared
    reservoir_units: int = 512
    # Below 1, so two runs from different states converge (the echo state property) while memory fades slowly
    reservoir_spectral_radius: float = 0.9
    # Each state is half new activation: a memory of a few tokens, since attention already covers the long range
    reservoir_leak_rate: float = 0.5
    # Drive standard deviation for the layer-normed block input: tanh stays between its linear and saturated ranges
    reservoir_input_scaling: float = 1.0
    # Share of nonzero recurrent weights, the usual sparse echo-state choice (the dense product costs the same at any share)
    reservoir_connectivity: float = 0.1
    # Layer i uses seed + i, so layers differ and every run builds the same reservoirs
    reservoir_seed: int = 1234
    # Bound of the fixed uniform bias, which breaks tanh's sign symmetry so the states carry even features too
    reservoir_bias_scaling: float = 0.2

    def __post_init__(self):
        if self.model_type not in ("NanEcho", "RAT"):
            raise ValueError(f"unknown model_type {self.model_type!r}: valid model types are 'NanEcho' and 'RAT'")
