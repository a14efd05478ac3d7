"""The review session: cases, statuses, mask edits with undo, autosave. No Qt."""
