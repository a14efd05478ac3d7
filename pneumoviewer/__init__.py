"""PneumoViewer: pneumothorax review on chest X-rays."""

__version__ = "0.1.0"
