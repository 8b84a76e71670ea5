"""KMeans as a classifier, and the studies of the series' KMeans posts (MNIST pixels, MNIST latents, WIFI)."""

from zspace.cluster.classifier import ClusterClassifier, ClusterInputError

__all__ = ["ClusterClassifier", "ClusterInputError"]
