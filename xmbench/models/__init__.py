"""Model stage: towers, adapters (PEFT), projection heads and the cross-modal model."""
