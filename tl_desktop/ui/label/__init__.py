"""The Label step: labelling images in the app, with a quick model that proposes labels and picks the next image."""
