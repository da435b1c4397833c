"""Clients of an exported model: local SavedModel / TFLite, TF Serving over
REST or gRPC, and the files pdl-predict writes."""
