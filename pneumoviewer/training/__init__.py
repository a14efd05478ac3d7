"""Making a model: labelled data and its cache, training, threshold tuning. No Qt.

Everything here prepares images with `pneumoviewer.model.pipeline`, the pre-processing the app runs.
"""
