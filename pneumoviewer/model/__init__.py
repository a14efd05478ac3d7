"""The AI: network factory, checkpoints, inference, Grad-CAM, training. No Qt."""
