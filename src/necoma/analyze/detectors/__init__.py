"""One module per detector; each defines one `necoma.analyze.detector.Detector` subclass."""
