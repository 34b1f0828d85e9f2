"""AML transaction monitoring (docs/aml.md): typology detectors, a synthetic generator
and the monitor that runs the detectors as transfers post and over history."""
