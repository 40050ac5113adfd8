//! Classifier-level tests.
