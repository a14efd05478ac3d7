"""The Qt desktop app. Shows core objects and sends user intent to them; no business logic."""
