//! Detector-level tests: hand-written attacks and benign look-alikes.
