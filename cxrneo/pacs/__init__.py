"""The hospital's PACS over DICOMweb (read only: QIDO-RS to search, WADO-RS to retrieve)."""
