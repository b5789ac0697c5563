"""Data stage: built-in and on-disk tri-modal datasets, preprocessing, batching."""
