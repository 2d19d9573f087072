"""Collection: decoders for every input, file importers and live listeners."""
