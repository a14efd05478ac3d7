"""The AI at inference: network factory, checkpoints, the input pipeline, inference, Grad-CAM. No Qt.

Training, its data cache and threshold tuning live in `pneumoviewer.training`: they need OpenCV and
albumentations, which the viewer's start-up and inference path never import.
"""
