"""``zspace explore RUN``: a local web app to look at a latent space, its images, and what the decoder makes of it.

A WebGL scatter (plotly.js, served from the plotly wheel, so it works offline) of the latent points on a PCA plane
or a t-SNE map, coloured by label or attribute; hovering a point shows its image, clicking a PCA plane decodes that
location (the other PCA coordinates held at the mean or at a chosen point's) beside its nearest training images.
"""

from zspace.explore.app import create_app
from zspace.explore.data import ExploreConfig, Explorer
from zspace.explore.server import serve
from zspace.explore.source import open_explorer

__all__ = ["ExploreConfig", "Explorer", "create_app", "open_explorer", "serve"]
