"""Export: the serving graph (preprocessing, network, XLA merge), SavedModel
for TF Serving and TFLite."""
