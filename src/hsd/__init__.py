"""hsd: low-latency event-camera recognition with Hybrid Step-wise Distillation SNNs.

Layers, lowest first (a layer never imports a higher one):
``events`` (numpy only) -> ``data`` (torch datasets) -> ``models`` -> ``train`` -> ``eval``
-> ``pipeline`` / ``cli``.
"""

__version__ = "0.1.0"
