"""The "Did transfer help?" window: the transfer check, model comparison and label budget with their plots."""
