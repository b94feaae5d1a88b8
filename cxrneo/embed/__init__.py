"""Image codes: datasets, DenseNet-121, training and extraction (the only torch user)."""
