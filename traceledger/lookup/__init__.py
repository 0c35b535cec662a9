"""Item histories for the public: assembly, caches and prebuilt answers."""
