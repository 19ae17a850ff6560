"""The paper's measurements (`pad analyze`): pure metrics, projector sources, the driver and its figures."""
