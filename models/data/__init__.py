"""Generated training data for hark: Speech Commands trees, augmentation, streams, sound events.

Nothing here downloads anything: every clip is synthesised (espeak-ng, flite, numpy) or read from a
folder the caller points at. Submodules are imported explicitly (`from models.data import augment`).
"""
