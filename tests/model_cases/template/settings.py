from dataclasses import dataclass


@dataclass
class ReservoirSettings:
    # RAT settings
    model_type: str = "NanEcho"
    reservoir_units: int = 8

    def __post_init__(self):
        if self.model_type not in ("NanEcho", "RAT"):
            raise ValueError("unknown model_type")
