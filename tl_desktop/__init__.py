"""tl-desktop: transfer learning on your own images, offline."""

__version__ = "0.1.0"
