"""Review of the data: near-duplicate pairs side by side and the gallery of images to keep, relabel or exclude."""
