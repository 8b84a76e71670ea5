"""``zspace explore RUN``: a local web app to look at a latent space, its images, and what the decoder makes of it.

A WebGL scatter (plotly.js, served from the plotly wheel, so it works offline) of the latent points on a PCA plane
or a t-SNE map, coloured by label or attribute; hovering a point shows its image, clicking a PCA plane decodes that
location (the other PCA coordinates held at the mean or at a chosen point's) beside its nearest training images.
"""

import sys
import types

from zspace.explore.app import create_app
from zspace.explore.data import ExploreConfig, Explorer
from zspace.explore.server import serve
from zspace.explore.source import open_explorer

__all__ = ["ExploreConfig", "Explorer", "create_app", "open_explorer", "serve"]


class _CallableModule(types.ModuleType):
    """``zspace.explore`` is this package once imported, so calling it starts the explorer from a notebook."""

    def __call__(self, *args, **kwargs):
        from zspace.explore.notebook import explore

        return explore(*args, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
