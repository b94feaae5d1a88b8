"""Label tables, read once for training, embedding and ``cxrneo synth`` (pure: no torch).

``rows`` reads CSV rows and ages; ``nih``, ``chexpert`` and ``plaincsv`` turn one format's rows
into records with raw findings; ``table`` encodes them with a label set into a :class:`Table`.
Imports run one way only: table -> readers -> rows.
"""
